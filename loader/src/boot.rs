//! The boot structures and entry CPU state for a plan (placeholder: being written).
