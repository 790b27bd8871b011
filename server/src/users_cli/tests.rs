use super::*;

/// A fresh directory under the system temp dir, removed on drop.
struct Dir(PathBuf);

impl Dir {
    fn new(tag: &str) -> Self {
        let d = std::env::temp_dir().join(format!("l2us-cli-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        Self(d)
    }
    fn file(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

const HAND_WRITTEN: &str = "\
# Users of the Paris office.
[[user]]
name = \"hb@hb\"
password = \"admin@123\"   # CHAP-MD5 needs this one

# The boss.
[[user]]
name = \"boss\"
nt_hash = \"8846F7EAEE8FB117AD06BDD830B7586C\"
address = \"172.16.1.77\"
";

fn pool_file(path: &Path) -> UsersFile {
    let config = Config::parse(
        "t.toml",
        &format!(
            "[pool]\nrange = \"172.16.1.2-172.16.1.100\"\nlocal = \"172.16.1.1\"\n[users]\nfile = \"{}\"\n",
            path.display()
        ),
        |_| None,
    )
    .unwrap();
    UsersFile::of(&config)
}

fn hash(p: &str) -> NtHash {
    NtHash::of_password(p)
}

#[test]
fn add_stores_only_the_nt_hash_and_keeps_every_other_entry_and_comment() {
    let d = Dir::new("add");
    let path = d.file("users.toml");
    std::fs::write(&path, HAND_WRITTEN).unwrap();
    let f = pool_file(&path);
    f.add(
        "alice",
        &hash("s3cret pass"),
        Some(Ipv4Addr::new(172, 16, 1, 50)),
    )
    .unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        text.starts_with(HAND_WRITTEN),
        "old entries changed:\n{text}"
    );
    assert!(!text.contains("s3cret"), "plaintext on disk:\n{text}");
    // The NT hash of "s3cret pass", as the engine loads it.
    let users = Users::parse("u", &text).unwrap();
    let alice = users.get("alice").unwrap();
    assert!(
        matches!(&alice.credential, Credential::NtHash(h) if **h == hash("s3cret pass").0),
        "{text}"
    );
    assert_eq!(alice.address, Some(Ipv4Addr::new(172, 16, 1, 50)));
    let mode = std::fs::metadata(&path).unwrap().mode() & 0o777;
    assert_eq!(mode & 0o007, 0, "others may not read the file: {mode:o}");
}

#[test]
fn add_creates_a_missing_file_with_mode_0600() {
    let d = Dir::new("create");
    let path = d.file("sub/users.toml");
    UsersFile::at(&path).add("bob", &hash("pw"), None).unwrap();
    assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
    let listed = UsersFile::at(&path).list().unwrap();
    assert_eq!(
        listed,
        vec![Listed {
            name: "bob".into(),
            credential: "nt-hash",
            address: None
        }]
    );
}

#[test]
fn add_refuses_duplicates_bad_names_and_bad_addresses_and_leaves_the_file_alone() {
    let d = Dir::new("refuse");
    let path = d.file("users.toml");
    std::fs::write(&path, HAND_WRITTEN).unwrap();
    let f = pool_file(&path);
    let long = "x".repeat(254);
    type Case<'a> = (&'a str, Option<[u8; 4]>, fn(&UserError) -> bool);
    let cases: [Case<'_>; 6] = [
        (
            "hb@hb",
            None,
            |e| matches!(e, UserError::Duplicate(n) if n == "hb@hb"),
        ),
        ("", None, |e| matches!(e, UserError::BadName(_))),
        (&long, None, |e| matches!(e, UserError::BadName(_))),
        ("carol", Some([172, 16, 2, 5]), |e| {
            matches!(e, UserError::OutsidePool { .. })
        }),
        ("carol", Some([172, 16, 1, 1]), |e| {
            matches!(e, UserError::LocalAddress(_))
        }),
        (
            "carol",
            Some([172, 16, 1, 77]),
            |e| matches!(e, UserError::AddressTaken { user, .. } if user == "boss"),
        ),
    ];
    for (name, address, expected) in cases {
        let e = f
            .add(name, &hash("pw"), address.map(Ipv4Addr::from))
            .unwrap_err();
        assert!(expected(&e), "{name:?} {address:?}: {e}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), HAND_WRITTEN);
    }
    // Without a configuration there is no pool to check against; a taken address still fails.
    UsersFile::at(&path)
        .add("dave", &hash("pw"), Some(Ipv4Addr::new(10, 9, 9, 9)))
        .unwrap();
    assert!(matches!(
        UsersFile::at(&path).add("eve", &hash("pw"), Some(Ipv4Addr::new(10, 9, 9, 9))),
        Err(UserError::AddressTaken { .. })
    ));
}

#[test]
fn del_removes_exactly_one_user_and_refuses_unknown_names() {
    let d = Dir::new("del");
    let path = d.file("users.toml");
    std::fs::write(&path, HAND_WRITTEN).unwrap();
    let f = UsersFile::at(&path);
    assert!(matches!(f.delete("nobody"), Err(UserError::Unknown(n)) if n == "nobody"));
    assert_eq!(std::fs::read_to_string(&path).unwrap(), HAND_WRITTEN);
    f.delete("boss").unwrap();
    let names: Vec<String> = f.list().unwrap().into_iter().map(|u| u.name).collect();
    assert_eq!(names, vec!["hb@hb".to_owned()]);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("# Users of the Paris office."), "{text}");
    assert!(
        text.contains("admin@123"),
        "the other user's entry is kept: {text}"
    );
    assert!(matches!(f.delete("boss"), Err(UserError::Unknown(_))));
}

#[test]
fn passwd_replaces_a_plaintext_password_with_an_nt_hash() {
    let d = Dir::new("passwd");
    let path = d.file("users.toml");
    std::fs::write(&path, HAND_WRITTEN).unwrap();
    let f = UsersFile::at(&path);
    assert!(matches!(
        f.set_password("carol", &hash("x")),
        Err(UserError::Unknown(_))
    ));
    f.set_password("hb@hb", &hash("new one")).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(!text.contains("admin@123"), "{text}");
    let users = Users::parse("u", &text).unwrap();
    assert!(matches!(
        &users.get("hb@hb").unwrap().credential,
        Credential::NtHash(h) if **h == hash("new one").0
    ));
    // The other user is untouched.
    assert!(text.contains("nt_hash = \"8846F7EAEE8FB117AD06BDD830B7586C\""));
    assert_eq!(
        users.get("boss").unwrap().address,
        Some(Ipv4Addr::new(172, 16, 1, 77))
    );
}

#[test]
fn list_flags_plaintext_passwords_and_never_shows_a_secret() {
    let d = Dir::new("list");
    let path = d.file("users.toml");
    std::fs::write(&path, HAND_WRITTEN).unwrap();
    let listed = UsersFile::at(&path).list().unwrap();
    assert_eq!(
        listed,
        vec![
            Listed {
                name: "boss".into(),
                credential: "nt-hash",
                address: Some(Ipv4Addr::new(172, 16, 1, 77))
            },
            Listed {
                name: "hb@hb".into(),
                credential: "password (plaintext!)",
                address: None
            },
        ]
    );
    assert!(
        UsersFile::at(d.file("missing.toml"))
            .list()
            .unwrap()
            .is_empty()
    );
}

#[test]
fn unreadable_or_invalid_files_are_reported_and_not_replaced() {
    let d = Dir::new("bad");
    // A directory where the file should be: reading fails.
    let path = d.file("users.toml");
    std::fs::create_dir_all(&path).unwrap();
    let f = UsersFile::at(&path);
    assert!(matches!(f.list(), Err(UserError::Io { .. })));
    assert!(matches!(
        f.add("a", &hash("pw"), None),
        Err(UserError::Io { .. })
    ));
    // A file the server would refuse is not edited (and the message carries no password).
    let broken = d.file("broken.toml");
    let text =
        "[[user]]\nname = \"a\"\npassword = \"pw1\"\n[[user]]\nname = \"a\"\npassword = \"pw2\"\n";
    std::fs::write(&broken, text).unwrap();
    let e = UsersFile::at(&broken)
        .add("b", &hash("pw"), None)
        .unwrap_err();
    assert!(matches!(e, UserError::Invalid(_)), "{e}");
    assert!(!e.to_string().contains("pw1"), "{e}");
    assert_eq!(std::fs::read_to_string(&broken).unwrap(), text);
    // Valid, but not in the [[user]] form this command edits.
    let inline = d.file("inline.toml");
    std::fs::write(&inline, "user = [{ name = \"a\", password = \"pw\" }]\n").unwrap();
    assert!(matches!(
        UsersFile::at(&inline).add("b", &hash("pw"), None),
        Err(UserError::Layout(_))
    ));
}

#[test]
fn concurrent_writers_never_lose_an_update() {
    let d = Dir::new("race");
    let path = d.file("users.toml");
    std::fs::write(&path, HAND_WRITTEN).unwrap();
    let writers: Vec<_> = ["t0", "t1"]
        .into_iter()
        .map(|tag| {
            let f = UsersFile::at(&path);
            #[expect(
                clippy::disallowed_methods,
                reason = "two writers racing for the file is the point of this test"
            )]
            std::thread::spawn(move || {
                for i in 0..50 {
                    f.add(&format!("{tag}-{i}"), &hash("pw"), None).unwrap();
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    let users = Users::parse("u", &std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(users.len(), 102);
    for tag in ["t0", "t1"] {
        for i in 0..50 {
            assert!(users.get(&format!("{tag}-{i}")).is_some(), "{tag}-{i} lost");
        }
    }
    let leftovers: Vec<_> = std::fs::read_dir(&d.0)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn a_rewrite_keeps_the_owner_group_and_mode_without_bits_for_others() {
    let d = Dir::new("mode");
    let path = d.file("users.toml");
    std::fs::write(&path, HAND_WRITTEN).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let before = std::fs::metadata(&path).unwrap();
    UsersFile::at(&path).add("x", &hash("pw"), None).unwrap();
    let after = std::fs::metadata(&path).unwrap();
    assert_eq!(after.mode() & 0o777, 0o640);
    assert_eq!((after.uid(), after.gid()), (before.uid(), before.gid()));
    assert_ne!(
        after.ino(),
        before.ino(),
        "replaced by rename, not rewritten"
    );
}
