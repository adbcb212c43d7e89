//! Intel MultiProcessor Specification 1.4 tables (placeholder: being written).
