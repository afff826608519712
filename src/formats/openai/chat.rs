//! Chat completions wire types (request, response). Placeholder: filled in by the translator work.
