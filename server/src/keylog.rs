//! The debugging key log (`[ipsec] keylog_file`): ESP rows in the file itself (Wireshark's
//! `esp_sa` table), ISAKMP rows beside it in `<file>.ikev1` (`ikev1_decryption_table`), one
//! file per table so that each can be fed to tshark as `-o uat:<table>:<row>`.
//!
//! Both files are opened (created with mode 0600, appended to) at start-up, before the server
//! drops root, and kept open: the unprivileged server could not create them later.

use crate::engine::ipsec::KeyLogRow;
use anyhow::Context as _;
use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// The two open key-log files.
#[derive(Debug)]
pub struct KeyLog {
    path: PathBuf,
    esp: File,
    ikev1: File,
}

fn open_append(path: &Path) -> anyhow::Result<File> {
    use std::os::unix::fs::OpenOptionsExt as _;
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("opening the key log {}", path.display()))
}

impl KeyLog {
    /// Opens (creates) `path` and `path.ikev1` for appending.
    ///
    /// # Errors
    /// When either file cannot be opened.
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        let mut ike_path = path.as_os_str().to_owned();
        ike_path.push(".ikev1");
        Ok(Self {
            path: path.to_owned(),
            esp: open_append(path)?,
            ikev1: open_append(Path::new(&ike_path))?,
        })
    }

    /// Appends `rows`, one line each, to the file of its table.
    pub fn write(&mut self, rows: Vec<KeyLogRow>) {
        for row in rows {
            let (file, line) = match &row {
                KeyLogRow::Esp(line) => (&mut self.esp, line),
                KeyLogRow::Ikev1(line) => (&mut self.ikev1, line),
            };
            if let Err(e) = writeln!(file, "{line}") {
                tracing::warn!(%e, path = %self.path.display(), "cannot write the key log");
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_go_to_the_file_of_their_table_and_are_appended() {
        let dir = std::env::temp_dir().join(format!("l2us-keylog-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("esp_sa");
        std::fs::write(&path, "earlier\n").unwrap();
        let mut log = KeyLog::open(&path).unwrap();
        log.write(vec![
            KeyLogRow::Esp("esp-1".into()),
            KeyLogRow::Ikev1("ike-1".into()),
            KeyLogRow::Esp("esp-2".into()),
        ]);
        drop(log);
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "earlier\nesp-1\nesp-2\n"
        );
        assert_eq!(
            std::fs::read_to_string(dir.join("esp_sa.ikev1")).unwrap(),
            "ike-1\n"
        );
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(dir.join("esp_sa.ikev1"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
