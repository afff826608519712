//! Messages API wire types. Placeholder: filled in by the translator work.
