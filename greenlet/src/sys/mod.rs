//! Platform code: memory mappings and the fault handler.
