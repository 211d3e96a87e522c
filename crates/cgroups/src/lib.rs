//! phobos-cgroups (skeleton; filled in by its issue).
