//! Cloud Hypervisor command lines from a boot plan.
//!
//! Not implemented yet (the emitters issue).
