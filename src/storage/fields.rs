//! One field of a storage credential: its canonical name, the other spellings accepted for it,
//! and whether it must be given. Each storage kind lists its credentials' fields with these.

/// One field of a credential: its canonical name, the other spellings accepted for it, and
/// whether it must be given.
pub struct Field {
    pub(super) name: &'static str,
    pub(super) aliases: &'static [&'static str],
    pub(super) required: bool,
}

pub(crate) const fn required(name: &'static str, aliases: &'static [&'static str]) -> Field {
    Field {
        name,
        aliases,
        required: true,
    }
}

pub(crate) const fn optional(name: &'static str) -> Field {
    Field {
        name,
        aliases: &[],
        required: false,
    }
}
