//! phobos-core (skeleton; filled in by its issue).
