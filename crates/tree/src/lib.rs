//! The replicated state machine (being written).
