//! phobos-mesos (skeleton; filled in by its issue).
