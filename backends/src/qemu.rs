//! `qemu-system-x86_64 -M microvm` command lines from a boot plan.
//!
//! Not implemented yet (the emitters issue).
