//! Firecracker `--config-file` JSON from a boot plan.
//!
//! Not implemented yet (the emitters issue).
