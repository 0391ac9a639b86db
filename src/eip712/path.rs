//! Where in the typed data a problem is, for error messages: `message.to.wallet`,
//! `message.cc[1]`, `types.Mail.contents`. Built on the stack while walking; formatted only when
//! an error needs it.

use std::fmt;

#[derive(Debug, Clone, Copy)]
pub(super) enum Path<'p> {
    Root(&'static str),
    Field(&'p Path<'p>, &'p str),
    Index(&'p Path<'p>, usize),
}

impl fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Recursion depth is bounded by the nesting limit: every level is one JSON container.
        match self {
            Path::Root(name) => f.write_str(name),
            Path::Field(parent, name) => {
                let plain = !name.is_empty()
                    && name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$');
                if plain {
                    write!(f, "{parent}.{name}")
                } else {
                    write!(f, "{parent}[{}]", super::quote(name))
                }
            }
            Path::Index(parent, index) => write!(f, "{parent}[{index}]"),
        }
    }
}
