//! cpio newc archives for `anyboot run --init` (placeholder: being written).
