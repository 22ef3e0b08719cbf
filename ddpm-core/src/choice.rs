//! Enums for every choice (schedule, dataset, activation, ...), named once.
//!
//! `choice_enum!` gives each enum the same snake_case name in TOML/JSON (serde), on the command
//! line (clap's `ValueEnum` with the `cli` feature, so `--help` lists the values), in notebooks (`FromStr`/`Display`) and
//! in error messages that list the allowed values.

/// Declare a choice enum: each variant with its snake_case name and a one-line doc.
macro_rules! choice_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident ($what:literal) {
            $( $(#[doc = $doc:literal])* $variant:ident = $text:literal ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        #[serde(rename_all = "snake_case")]
        $vis enum $name {
            $( $(#[doc = $doc])* $variant ),+
        }

        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The snake_case name used in configs, flags and charts.
            pub fn name(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.name())
            }
        }

        impl std::str::FromStr for $name {
            type Err = $crate::error::DdpmError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                let key = s.trim().to_ascii_lowercase().replace('-', "_");
                Self::ALL.iter().copied().find(|v| v.name() == key).ok_or_else(|| {
                    $crate::error::DdpmError::UnknownChoice {
                        what: $what,
                        given: s.to_string(),
                        allowed: Self::ALL.iter().map(|v| v.name()).collect::<Vec<_>>().join(", "),
                    }
                })
            }
        }

        #[cfg(feature = "cli")]
        impl clap::ValueEnum for $name {
            fn value_variants<'a>() -> &'a [Self] {
                Self::ALL
            }
            fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
                Some(clap::builder::PossibleValue::new(self.name()))
            }
        }
    };
}

pub(crate) use choice_enum;
