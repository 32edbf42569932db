//! SQL dumps left in a layer: a password stored apart from its column's name. `sqlite3
//! .dump` writes `INSERT INTO users VALUES(…)` after the `CREATE TABLE` that names the
//! columns; a `mysqldump --complete-insert` file (hand-written in its style: mysqldump is not
//! installed) lists the columns in each multi-row `INSERT`; a `pg_dump` file's `COPY … FROM
//! stdin;` rows are tab-separated. Each credential column's value is found, placed on its
//! line; empty values, `NULL`, placeholders and a hash column are not.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::engines::need;
use crate::util::*;

/// Every finding as (path, line, secret), sorted.
fn found(json: &Value) -> Vec<(String, u64, String)> {
    let mut v: Vec<(String, u64, String)> = json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["path"].as_str().unwrap().to_owned(),
                f["line"].as_u64().unwrap_or(0),
                f["secret"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    v.sort();
    v
}

fn row(path: &str, line: u64, secret: &str) -> (String, u64, String) {
    (path.to_owned(), line, secret.to_owned())
}

/// Scans an image whose one layer adds `files`; it must have findings.
fn scan_files(dir: &Path, name: &str, files: Vec<Entry>) -> (Value, String) {
    let path = out_path(dir, Format::OciArchive, name);
    let spec = ImageSpec { layers: vec![Layer::new("COPY . /", files)], ..ImageSpec::default() };
    ig::write_image(&spec, Format::OciArchive, &path).unwrap();
    let (code, json, err) = scan_json(&path, &["--show-secrets"]);
    assert_eq!(code, 1, "{err}");
    (json, err)
}

/// `sqlite3 DB .dump` of a database made by `sql`.
fn sqlite_dump(dir: &Path, sql: &str) -> Vec<u8> {
    let db = dir.join("app.db");
    let make = Command::new(need("sqlite3")).arg(&db).arg(sql).output().unwrap();
    assert!(make.status.success(), "{}", String::from_utf8_lossy(&make.stderr));
    let dump = Command::new(need("sqlite3")).arg(&db).arg(".dump").output().unwrap();
    assert!(dump.status.success(), "{}", String::from_utf8_lossy(&dump.stderr));
    dump.stdout
}

#[test]
fn passwords_in_sql_dumps_are_found_under_their_columns() {
    let work = tmp();
    let sqlite = sqlite_dump(
        work.path(),
        "CREATE TABLE users(id INTEGER PRIMARY KEY, login TEXT, password TEXT, \
         password_hash TEXT, api_token TEXT);
         INSERT INTO users VALUES(1,'admin','TESTKq8vLm2!Zx9',NULL,'');
         INSERT INTO users VALUES(2,'bob','','$2y$10$FAKEabcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJ',NULL);
         INSERT INTO users VALUES(3,'eve','changeme','5f4dcc3b5aa765d61d8327deb882cf99','TESTq8Lm3Xv9Rt2Wp7Kc4');",
    );
    let mysql = "-- MySQL dump 10.13  Distrib 8.0.36, for Linux (x86_64)\n\
        --\n-- Dumping data for table `accounts`\n--\n\n\
        LOCK TABLES `accounts` WRITE;\n\
        INSERT INTO `accounts` (`id`, `email`, `db_password`, `note`) VALUES \
        (1,'o\\'brien@example.test','TESTTw4kLq9!Zm2','it''s fine'),\
        (2,'b@example.test',NULL,'none'),(3,'c@example.test','TESTRm4!sPq8Zt','');\n\
        UNLOCK TABLES;\n";
    let pg = "--\n-- PostgreSQL database dump\n--\n\n\
        COPY public.service_accounts (id, name, client_secret, created_at) FROM stdin;\n\
        1\tbilling\tFAKE8qhG2MRfCOLWHNWiMVdhV2zW7BEyyqg\t2024-01-01\n\
        2\tmailer\t\\N\t2024-01-02\n\
        \\.\n\n\
        COPY public.audit (id, message) FROM stdin;\n\
        1\tTESTKq8vLm2!Zx9 rotated\n\
        \\.\n";
    let files = vec![
        Entry::file("srv/backup/app.sql", sqlite),
        Entry::file("srv/backup/mysql.sql", mysql),
        Entry::file("srv/backup/pg.sql", pg),
    ];
    let (json, err) = scan_files(work.path(), "dumps", files);
    assert_eq!(
        found(&json),
        [
            row("/srv/backup/app.sql", 4, "TESTKq8vLm2!Zx9"),
            row("/srv/backup/app.sql", 6, "TESTq8Lm3Xv9Rt2Wp7Kc4"),
            row("/srv/backup/mysql.sql", 7, "TESTRm4!sPq8Zt"),
            row("/srv/backup/mysql.sql", 7, "TESTTw4kLq9!Zm2"),
            row("/srv/backup/pg.sql", 6, "FAKE8qhG2MRfCOLWHNWiMVdhV2zW7BEyyqg"),
        ]
    );
    assert!(err.is_empty(), "{err}");
}

/// Key-value tables store a credential's name in one column and its value in another
/// (`settings(name, value)`, WordPress's `wp_options`): a row whose key names a
/// credential has its value found, placed on its line; the other rows' values and a row
/// whose key is no name are not.
#[test]
fn key_value_rows_are_read_under_their_keys() {
    let work = tmp();
    let sqlite = sqlite_dump(
        work.path(),
        "CREATE TABLE settings(id INTEGER PRIMARY KEY, name TEXT UNIQUE, value TEXT);
         INSERT INTO settings VALUES(1,'site_title','Example TESTq8Lm3Xv9 shop');
         INSERT INTO settings VALUES(2,'smtp_password','TESTsmtpK4q!Wz8');
         INSERT INTO settings VALUES(3,'password reset note','TESTnoteR5t!Yq2');",
    );
    let wordpress = "-- MySQL dump 10.13  Distrib 8.0.36, for Linux (x86_64)\n\
        CREATE TABLE `wp_options` (\n  `option_id` bigint unsigned NOT NULL AUTO_INCREMENT,\n  \
        `option_name` varchar(191) NOT NULL DEFAULT '',\n  `option_value` longtext NOT NULL,\n  \
        `autoload` varchar(20) NOT NULL DEFAULT 'yes',\n  PRIMARY KEY (`option_id`),\n  \
        UNIQUE KEY `option_name` (`option_name`)\n) ENGINE=InnoDB;\n\
        LOCK TABLES `wp_options` WRITE;\n\
        INSERT INTO `wp_options` VALUES (1,'siteurl','https://shop.example.test','yes'),\
        (2,'mailserver_pass','TESTmailP7w!Xe3','yes'),(3,'blogname','Shop','yes');\n\
        UNLOCK TABLES;\n";
    let files = vec![
        Entry::file("srv/backup/settings.sql", sqlite),
        Entry::file("srv/backup/wordpress.sql", wordpress),
    ];
    let (json, err) = scan_files(work.path(), "kv", files);
    assert_eq!(
        found(&json),
        [
            row("/srv/backup/settings.sql", 5, "TESTsmtpK4q!Wz8"),
            row("/srv/backup/wordpress.sql", 11, "TESTmailP7w!Xe3"),
        ]
    );
    assert!(err.is_empty(), "{err}");
}
