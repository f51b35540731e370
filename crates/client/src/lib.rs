//! A small pipelined client (being written).
