//! Xen `xl.cfg` files (`type = "pvh"` / `"pv"`) from a boot plan, written by hand: xl.cfg is
//! libxlutil's own grammar, not TOML or JSON.
//!
//! Not implemented yet (the emitters issue).
