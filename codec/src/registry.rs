//! `wire_enum!`: open registries of wire values (STYLE.md §4.2).

/// Declares a newtype over an integer with one associated constant per registered value.
///
/// Registries are open-ended (vendors, future RFCs), so any integer is a valid value: unknown
/// ones are carried, compared and logged as numbers. The generated `Debug` prints the constant's
/// name for registered values and `Type(0x..)` otherwise; `name()` returns the registered name.
///
/// ```
/// # use l2sec_codec as codec;
/// codec::wire_enum! {
///     /// Control message types.
///     pub struct MessageType(u16) {
///         /// Start-Control-Connection-Request.
///         SCCRQ = 1,
///         /// Start-Control-Connection-Reply.
///         SCCRP = 2,
///     }
/// }
/// assert_eq!(format!("{:?}", MessageType::SCCRP), "SCCRP");
/// assert_eq!(format!("{:?}", MessageType(9)), "MessageType(0x0009)");
/// assert_eq!(MessageType::from(1u16), MessageType::SCCRQ);
/// assert_eq!(u16::from(MessageType::SCCRP), 2);
/// ```
#[macro_export]
macro_rules! wire_enum {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident($repr:ty) {
            $( $(#[$cmeta:meta])* $const:ident = $value:expr ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        $vis struct $name(pub $repr);

        impl $name {
            $( $(#[$cmeta])* pub const $const: Self = Self($value); )*

            /// The registered name of this value, if it has one.
            #[must_use]
            pub const fn name(self) -> Option<&'static str> {
                match self.0 {
                    $( v if v == $value => Some(stringify!($const)), )*
                    _ => None,
                }
            }

            /// Whether this value is one of the registered constants.
            #[must_use]
            pub const fn is_known(self) -> bool {
                self.name().is_some()
            }

            /// The value as big-endian bytes.
            #[must_use]
            pub const fn to_be_bytes(self) -> [u8; ::core::mem::size_of::<$repr>()] {
                self.0.to_be_bytes()
            }
        }

        impl ::core::fmt::Debug for $name {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                match self.name() {
                    Some(name) => f.write_str(name),
                    None => write!(
                        f,
                        concat!(stringify!($name), "(0x{:0width$x})"),
                        self.0,
                        width = 2 * ::core::mem::size_of::<$repr>()
                    ),
                }
            }
        }

        impl ::core::fmt::Display for $name {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                ::core::fmt::Debug::fmt(self, f)
            }
        }

        impl ::core::convert::From<$repr> for $name {
            fn from(v: $repr) -> Self {
                Self(v)
            }
        }

        impl ::core::convert::From<$name> for $repr {
            fn from(v: $name) -> Self {
                v.0
            }
        }
    };
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::format;

    crate::wire_enum! {
        /// A test registry.
        pub struct Code(u8) {
            /// One.
            ONE = 1,
            TWO = 2,
        }
    }

    #[test]
    fn known_values_print_their_name_and_unknown_ones_their_number() {
        assert_eq!(format!("{:?}", Code::ONE), "ONE");
        assert_eq!(format!("{}", Code(2)), "TWO");
        assert_eq!(format!("{:?}", Code(0xfe)), "Code(0xfe)");
        assert!(Code(2).is_known());
        assert!(!Code(3).is_known());
        assert_eq!(Code::from(1), Code::ONE);
        assert_eq!(u8::from(Code::TWO), 2);
        assert_eq!(Code::TWO.to_be_bytes(), [2]);
    }
}
