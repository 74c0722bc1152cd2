//! Faults and bad input: each a clear error, a non-zero exit, and no index in the registry.
