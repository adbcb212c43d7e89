//! Direct launch under KVM (Linux x86_64 only): guest memory, segment loading, the PVH,
//! Linux 64-bit and multiboot v1 entry states, a 16550 UART, isa-debug-exit.
//!
//! Not implemented yet (the `run` issue). `docs/spikes/kvm-probe-findings.md` records what this
//! host's KVM does and does not do.
