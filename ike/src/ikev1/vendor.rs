//! Vendor IDs of the usual IKEv1 peers, recognised so that logs can say who is talking (the
//! values as the clients send them; Wireshark's table names the same ones).

use core::fmt;

/// A known Vendor ID: how it starts, whether more bytes may follow (a version), its name.
struct Known {
    prefix: &'static [u8],
    versioned: bool,
    name: &'static str,
}

const fn known(prefix: &'static [u8], versioned: bool, name: &'static str) -> Known {
    Known {
        prefix,
        versioned,
        name,
    }
}

/// Every Vendor ID we name. The index is the bit in [`PeerVendors`].
const KNOWN: &[Known] = &[
    // Windows (2000 and later): 16 bytes, then a 4-byte version.
    known(
        b"\x1e\x2b\x51\x69\x05\x99\x1c\x7d\x7c\x96\xfc\xbf\xb5\x87\xe4\x61",
        true,
        "MS NT5 ISAKMPOAKLEY",
    ),
    known(
        b"\x4a\x13\x1c\x81\x07\x03\x58\x45\x5c\x57\x28\xf2\x0e\x95\x45\x2f",
        false,
        "RFC 3947",
    ),
    known(
        b"\xcd\x60\x46\x43\x35\xdf\x21\xf8\x7c\xfd\xb2\xfc\x68\xb6\xa4\x48",
        false,
        "draft-ietf-ipsec-nat-t-ike-02",
    ),
    known(
        b"\x90\xcb\x80\x91\x3e\xbb\x69\x6e\x08\x63\x81\xb5\xec\x42\x7b\x1f",
        false,
        "draft-ietf-ipsec-nat-t-ike-02\\n",
    ),
    known(
        b"\x7d\x94\x19\xa6\x53\x10\xca\x6f\x2c\x17\x9d\x92\x15\x52\x9d\x56",
        false,
        "draft-ietf-ipsec-nat-t-ike-03",
    ),
    known(
        b"\xaf\xca\xd7\x13\x68\xa1\xf1\xc9\x6b\x86\x96\xfc\x77\x57\x01\x00",
        false,
        "DPD",
    ),
    // IKE fragmentation (Cisco style; Windows and strongSwan send it with a 4-byte suffix).
    known(
        b"\x40\x48\xb7\xd5\x6e\xbc\xe8\x85\x25\xe7\xde\x7f\x00\xd6\xc2\xd3",
        true,
        "FRAGMENTATION",
    ),
    known(b"\x09\x00\x26\x89\xdf\xd6\xb7\x12", false, "XAUTH"),
    known(
        b"\x12\xf5\xf2\x8c\x45\x71\x68\xa9\x70\x2d\x9f\xe2\x74\xcc\x01\x00",
        false,
        "Cisco Unity",
    ),
    known(
        b"\x88\x2f\xe5\x6d\x6f\xd2\x0d\xbc\x22\x51\x61\x3b\x2e\xbe\x5b\xeb",
        true,
        "strongSwan",
    ),
    known(
        b"\xfb\x1d\xe3\xcd\xf3\x41\xb7\xea\x16\xb7\xe5\xbe\x08\x55\xf1\x20",
        false,
        "MS-Negotiation Discovery Capable",
    ),
    known(
        b"\x26\x24\x4d\x38\xed\xdb\x61\xb3\x17\x2a\x36\xe3\xd0\xcf\xb8\x19",
        false,
        "Microsoft Vid-Initial-Contact",
    ),
    known(
        b"\xe3\xa5\x96\x6a\x76\x37\x9f\xe7\x07\x22\x82\x31\xe5\xce\x86\x52",
        true,
        "IKE CGA version 1",
    ),
];

/// The known Vendor IDs a peer sent, as a set (unknown ones are counted, not kept).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PeerVendors {
    known: u32,
    unknown: u8,
}

impl PeerVendors {
    /// Records one Vendor ID payload body.
    pub fn add(&mut self, vid: &[u8]) {
        let hit = KNOWN.iter().position(|k| {
            vid.starts_with(k.prefix) && (k.versioned || vid.len() == k.prefix.len())
        });
        match hit.and_then(|i| u32::try_from(i).ok()) {
            Some(i) => self.known |= 1 << i,
            None => self.unknown = self.unknown.saturating_add(1),
        }
    }

    /// The names of the known ones, in a fixed order.
    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        KNOWN
            .iter()
            .enumerate()
            .filter(|(i, _)| self.known & (1 << i) != 0)
            .map(|(_, k)| k.name)
    }

    /// How many Vendor IDs we did not recognise.
    #[must_use]
    pub const fn unknown(&self) -> u8 {
        self.unknown
    }
}

impl fmt::Display for PeerVendors {
    /// `MS NT5 ISAKMPOAKLEY, RFC 3947, DPD (+2 unknown)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for name in self.names() {
            if !first {
                f.write_str(", ")?;
            }
            f.write_str(name)?;
            first = false;
        }
        if self.unknown > 0 {
            write!(
                f,
                "{}(+{} unknown)",
                if first { "" } else { " " },
                self.unknown
            )?;
        } else if first {
            f.write_str("none")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_vendor_ids_of_a_real_strongswan_client_and_of_windows_are_named() {
        // As captured from strongSwan 5.9 (../shared/interop/samples) and Windows 10.
        let mut v = PeerVendors::default();
        for vid in [
            &b"\x09\x00\x26\x89\xdf\xd6\xb7\x12"[..],
            b"\x40\x48\xb7\xd5\x6e\xbc\xe8\x85\x25\xe7\xde\x7f\x00\xd6\xc2\xd3\x80\x00\x00\x00",
            b"\x4a\x13\x1c\x81\x07\x03\x58\x45\x5c\x57\x28\xf2\x0e\x95\x45\x2f",
            b"\x90\xcb\x80\x91\x3e\xbb\x69\x6e\x08\x63\x81\xb5\xec\x42\x7b\x1f",
            b"\xaf\xca\xd7\x13\x68\xa1\xf1\xc9\x6b\x86\x96\xfc\x77\x57\x01\x00",
            b"\x1e\x2b\x51\x69\x05\x99\x1c\x7d\x7c\x96\xfc\xbf\xb5\x87\xe4\x61\x00\x00\x00\x09",
            b"something else",
        ] {
            v.add(vid);
        }
        assert_eq!(
            v.to_string(),
            "MS NT5 ISAKMPOAKLEY, RFC 3947, draft-ietf-ipsec-nat-t-ike-02\\n, DPD, \
             FRAGMENTATION, XAUTH (+1 unknown)"
        );
        // An exact ID with extra bytes is not that ID.
        let mut w = PeerVendors::default();
        w.add(b"\xaf\xca\xd7\x13\x68\xa1\xf1\xc9\x6b\x86\x96\xfc\x77\x57\x01\x00\x01");
        assert_eq!(w.to_string(), "(+1 unknown)");
        assert_eq!(PeerVendors::default().to_string(), "none");
    }
}
