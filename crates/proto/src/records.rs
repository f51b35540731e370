//! Placeholder: the request and response records are being written.
