//! The local users file: who may log in, with what secret, and which static address.
//!
//! ```toml
//! [[user]]
//! name = "hb@hb"
//! password = "admin@123"          # needed for CHAP-MD5; works for PAP and MS-CHAPv2 too
//!
//! [[user]]
//! name = "alice"
//! nt_hash = "8846f7eaee8fb117ad06bdd830b7586c"   # MD4 of the UTF-16LE password: PAP and MS-CHAPv2
//! address = "172.16.1.77"          # optional static address
//! ```
//!
//! Storing only the NT hash means no plaintext on disk; CHAP-MD5 then cannot be offered to that
//! user (it needs the password itself), which the engine takes into account.

use std::collections::BTreeMap;
use std::fmt;
use std::net::Ipv4Addr;

use serde::Deserialize;
use zeroize::Zeroizing;

/// What a user authenticates with.
#[derive(Clone)]
pub enum Credential {
    /// The password itself (all methods).
    Password(Zeroizing<String>),
    /// The NT hash of the password (PAP and MS-CHAPv2).
    NtHash(Zeroizing<[u8; 16]>),
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Password(_) => f.write_str("Password(<redacted>)"),
            Self::NtHash(_) => f.write_str("NtHash(<redacted>)"),
        }
    }
}

/// One user.
#[derive(Debug, Clone)]
pub struct User {
    /// The login name, as the client sends it.
    pub name: String,
    /// The secret.
    pub credential: Credential,
    /// A static address, if the user has one.
    pub address: Option<Ipv4Addr>,
}

/// All users, by name.
#[derive(Debug, Clone, Default)]
pub struct Users {
    by_name: BTreeMap<String, User>,
}

/// A users file that could not be loaded; the message names the file and line or user.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct UsersError {
    /// The file.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    user: Vec<Entry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    name: String,
    password: Option<Zeroizing<String>>,
    nt_hash: Option<String>,
    address: Option<Ipv4Addr>,
}

impl fmt::Debug for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Entry")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl Users {
    /// Parses the text of a users file named `path` (for messages).
    pub fn parse(path: &str, text: &str) -> Result<Self, UsersError> {
        let err = |message: String| UsersError {
            path: path.to_owned(),
            message,
        };
        // toml's own Display quotes the offending line, which may hold a password: report only
        // the position and the message.
        let file: File =
            toml::from_str(text).map_err(|e| err(crate::config::toml_message(text, &e)))?;
        let mut by_name = BTreeMap::new();
        let mut addresses = BTreeMap::new();
        for entry in file.user {
            let name = entry.name;
            if name.is_empty() || name.len() > 253 {
                return Err(err(format!("user name {name:?} must have 1 to 253 bytes")));
            }
            let credential = match (entry.password, entry.nt_hash) {
                (Some(p), None) if !p.is_empty() => Credential::Password(p),
                (None, Some(h)) => {
                    Credential::NtHash(Zeroizing::new(parse_hex16(&h).ok_or_else(|| {
                        err(format!("user {name:?}: nt_hash must be 32 hex digits"))
                    })?))
                }
                _ => {
                    return Err(err(format!(
                        "user {name:?}: give exactly one of a non-empty password or nt_hash"
                    )));
                }
            };
            if let Some(a) = entry.address
                && let Some(other) = addresses.insert(a, name.clone())
            {
                return Err(err(format!(
                    "users {other:?} and {name:?} have the same static address {a}"
                )));
            }
            let user = User {
                name: name.clone(),
                credential,
                address: entry.address,
            };
            if by_name.insert(name.clone(), user).is_some() {
                return Err(err(format!("user {name:?} is listed twice")));
            }
        }
        Ok(Self { by_name })
    }

    /// Looks a user up by the name the client sent.
    #[must_use]
    pub fn get(&self, name: &str) -> Option<&User> {
        self.by_name.get(name)
    }

    /// Number of users.
    #[must_use]
    pub fn len(&self) -> usize {
        self.by_name.len()
    }

    /// Whether there are no users.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }

    /// Every user, by name.
    pub fn iter(&self) -> impl Iterator<Item = &User> + '_ {
        self.by_name.values()
    }

    /// Static addresses of all users (reserved in the pool).
    pub fn static_addresses(&self) -> impl Iterator<Item = Ipv4Addr> + '_ {
        self.by_name.values().filter_map(|u| u.address)
    }
}

fn parse_hex16(s: &str) -> Option<[u8; 16]> {
    let s = s.trim();
    if s.len() != 32 || !s.is_ascii() {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hashes_and_static_addresses_load() {
        let text = r#"
            [[user]]
            name = "hb@hb"
            password = "admin@123"

            [[user]]
            name = "alice"
            nt_hash = "8846F7EAEE8FB117AD06BDD830B7586C"
            address = "172.16.1.77"
        "#;
        let users = Users::parse("users.toml", text).unwrap();
        assert_eq!(users.len(), 2);
        let hb = users.get("hb@hb").unwrap();
        assert!(matches!(&hb.credential, Credential::Password(p) if p.as_str() == "admin@123"));
        let alice = users.get("alice").unwrap();
        assert!(
            matches!(&alice.credential, Credential::NtHash(h) if h[0] == 0x88 && h[15] == 0x6c)
        );
        assert_eq!(
            users.static_addresses().collect::<Vec<_>>(),
            vec![Ipv4Addr::new(172, 16, 1, 77)]
        );
        assert!(users.get("HB@HB").is_none(), "names are case-sensitive");
        let shown = format!("{users:?}");
        assert!(
            !shown.contains("admin@123") && !shown.contains("8846"),
            "{shown}"
        );
    }

    #[test]
    fn broken_files_are_refused_with_a_reason() {
        let cases = [
            ("[[user]]\nname = \"a\"\n", "exactly one"),
            (
                "[[user]]\nname = \"a\"\npassword = \"x\"\nnt_hash = \"00\"\n",
                "exactly one",
            ),
            ("[[user]]\nname = \"a\"\nnt_hash = \"xyz\"\n", "32 hex"),
            ("[[user]]\nname = \"a\"\npassword = \"\"\n", "exactly one"),
            ("[[user]]\nname = \"\"\npassword = \"x\"\n", "1 to 253"),
            (
                "[[user]]\nname = \"a\"\npassword = \"x\"\n[[user]]\nname = \"a\"\npassword = \"y\"\n",
                "twice",
            ),
            (
                "[[user]]\nname = \"a\"\npassword = \"x\"\naddress = \"10.0.0.5\"\n[[user]]\nname = \"b\"\npassword = \"y\"\naddress = \"10.0.0.5\"\n",
                "same static address",
            ),
            ("[[user]]\nname = \"a\"\npasword = \"x\"\n", "line 3"),
        ];
        for (text, needle) in cases {
            let e = Users::parse("u.toml", text).unwrap_err().to_string();
            assert!(
                e.starts_with("u.toml: ") && e.contains(needle),
                "{text:?} gave {e}"
            );
            assert!(!e.contains("\"x\""), "a password leaked into {e}");
        }
    }
}
