//! phobos-config: the strict TOML configuration (filled in below).
