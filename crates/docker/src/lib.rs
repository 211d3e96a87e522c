//! phobos-docker (skeleton; filled in by its issue).
