//! Noise filters shared by every detector: placeholders, templated values,
//! and a shipped list of documented example credentials (found in SDKs and
//! docs), which are suppressed by default and counted.
//!
//! Every placeholder test carries the reason it is not a secret
//! ([`placeholder`], [`placeholder_word`]); values set aside for either are
//! counted in the report's summary (`placeholders`), like documented
//! examples, so an auditor sees how much was dropped. Stock words as the
//! whole value (`password`, `admin123`) are placeholders for every rule;
//! template words and hand-typed filler (`abcdefgh…`) only for contextual
//! values, since a provider-format token is a token even when it looks made
//! up. The word filter
//! matches *whole* values (`changeme`, `password123`), or template words
//! anywhere (`your_password_here`), never a common word inside a longer
//! value: `Nonexistent-Vq8z` or `MyPassword!92kq` in a connection string
//! look like real (if weak) passwords and are reported.

use crate::finding::Severity;

/// Documented example credentials, one per line (`#` comments).
const KNOWN_EXAMPLES: &str = include_str!("known_examples.txt");

/// Substrings that make a value a template or a mask, with the reason.
const STRUCTURAL: &[(&[u8], &str)] = &[
    (b"${", "a shell or template variable reference (${VAR})"),
    (b"$(", "a shell command substitution ($(cmd))"),
    (b"{{", "a template expression ({{ .Values.x }}, Jinja, Mustache)"),
    (b"}}", "a template expression ({{ .Values.x }}, Jinja, Mustache)"),
    (b"%s", "a printf format directive"),
    (b"xxxxxx", "a mask of x characters"),
    (b"******", "a mask of asterisks"),
    (b"......", "an elided value"),
    (b"000000000000", "a zero-filled value"),
];

/// Why `secret` is obviously not real, if it is not: empty, a template
/// (`${VAR}`, `{{ x }}`, `<token>`, `%s`), a mask (`****`, `xxxx`), or one
/// repeated byte.
pub fn placeholder(secret: &[u8]) -> Option<&'static str> {
    let s = secret;
    let Some(&first) = s.first() else { return Some("an empty value") };
    let contains = |needle: &[u8]| s.windows(needle.len()).any(|w| w.eq_ignore_ascii_case(needle));
    if let Some((_, why)) = STRUCTURAL.iter().find(|(needle, _)| contains(needle)) {
        return Some(why);
    }
    if first == b'<' && s.last() == Some(&b'>') {
        return Some("an angle-bracket placeholder (<password>)");
    }
    if indexed_variable(s) {
        return Some("a code expression (an indexed variable, creds[1])");
    }
    if member_of_instance_variable(s) {
        return Some("a code expression (an instance variable's member, @http.proxy_pass)");
    }
    if open_call(s) {
        return Some("a code expression (a call or subscript, config.get(…))");
    }
    if elided(s) {
        return Some("an elided value (U2FsdGVkX1...)");
    }
    if escaped_text(s) {
        return Some("escaped non-ASCII text (a translation, \\u79d8\\u5bc6…)");
    }
    if let Some(why) = variable_reference(s) {
        return Some(why);
    }
    s.iter().all(|&b| b == first).then_some("one repeated character")
}

/// A whole value that is a variable a shell or `cmd.exe` expands before the
/// command sees it: `$PASSWORD`, `$db_pass`, `%PASSWORD%`. On a command line
/// the real value is elsewhere; a literal password starting with `$` would
/// have been expanded (to nothing) too.
fn variable_reference(s: &[u8]) -> Option<&'static str> {
    let name = |n: &[u8]| {
        n.len() >= 2
            && (n[0].is_ascii_alphabetic() || n[0] == b'_')
            && n.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'_')
    };
    if let Some(rest) = s.strip_prefix(b"$")
        && name(rest)
    {
        return Some("a shell variable reference ($VAR)");
    }
    let inner = s.strip_prefix(b"%").and_then(|r| r.strip_suffix(b"%"));
    inner.is_some_and(name).then_some("a cmd.exe variable reference (%VAR%)")
}

/// `creds[1]`, `args["password"]`, `self.opts[key]`: a variable indexed in
/// code, assigned to a password-named key. The name starts lowercase, as
/// variables do; a password such as `Secret[2024]` does not match.
fn indexed_variable(s: &[u8]) -> bool {
    let Some(open) = s.iter().position(|&b| b == b'[') else { return false };
    let (name, rest) = s.split_at(open);
    let index = &rest[1..rest.len().saturating_sub(1).max(1)];
    name.first().is_some_and(|b| b.is_ascii_lowercase() || *b == b'_')
        && name.iter().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.'))
        && rest.len() >= 2
        && rest.last() == Some(&b']')
        && !index.is_empty()
        && index.iter().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'"' | b'\''))
}

/// `@http.proxy_pass`: Ruby (or CoffeeScript) reading a member of an
/// instance variable, `proxy_pass = @http.proxy_pass` in xmlrpc's client.
/// Lowercase names joined by at least one dot; a password such as `@Dm1n.x`
/// or `@dmin` is not taken for one.
fn member_of_instance_variable(s: &[u8]) -> bool {
    let name = |n: &[u8]| {
        n.first().is_some_and(|b| b.is_ascii_lowercase() || *b == b'_')
            && n.iter().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'_')
    };
    s.strip_prefix(b"@").is_some_and(|rest| {
        let mut parts = rest.split(|&b| b == b'.');
        rest.contains(&b'.') && parts.all(name)
    })
}

/// `config.get(`, `self.module.params[`, `dict(type=`: a call or subscript
/// that a value's quote cut short, in code that reads the credential from
/// elsewhere. The name starts lowercase and holds a `.` or `_` (or, for a
/// call with keyword arguments, is followed by `name=`), so a password such
/// as `Summer(2024` or `Pass(` is not taken for one.
fn open_call(s: &[u8]) -> bool {
    let Some(open) = s.iter().position(|&b| b == b'(' || b == b'[') else { return false };
    let (name, rest) = s.split_at(open);
    let ident = |n: &[u8]| {
        n.first().is_some_and(|b| b.is_ascii_lowercase() || *b == b'_')
            && n.iter().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.'))
    };
    let args = &rest[1..];
    let cut = args.is_empty() && name.iter().any(|b| matches!(b, b'.' | b'_'));
    let keyword =
        rest[0] == b'(' && args.strip_suffix(b"=").is_some_and(|k| !k.is_empty() && ident(k));
    ident(name) && (cut || keyword)
}

/// `U2FsdGVkX1...`, `ABAQDAwXxn7kIMNWzcDfo…`: documentation shortens a long
/// value with an ellipsis. A value that ends in `...` or `…` and holds no
/// other dot is cut, not a credential (a password with a dot inside, such as
/// `pass.word...`, is left alone).
fn elided(s: &[u8]) -> bool {
    let head = s.strip_suffix(b"...").or_else(|| s.strip_suffix("\u{2026}".as_bytes()));
    head.is_some_and(|h| h.len() >= 8 && !h.contains(&b'.'))
}

/// `\u79d8\u5bc6\u9375…`: Java `.properties` files escape every non-Latin
/// character, so a translated label after a password-named key is a run of
/// `\uXXXX` escapes. A value that is mostly escapes of non-ASCII characters
/// (at least two, and at least two thirds of its bytes) is that text.
fn escaped_text(s: &[u8]) -> bool {
    let mut escaped = 0;
    let mut i = 0;
    while i + 6 <= s.len() {
        let hex = &s[i + 2..i + 6];
        if s[i] == b'\\'
            && s[i + 1] == b'u'
            && hex.iter().all(u8::is_ascii_hexdigit)
            && !hex.starts_with(b"00")
        {
            escaped += 1;
            i += 6;
        } else {
            i += 1;
        }
    }
    escaped >= 2 && escaped * 6 * 3 >= s.len() * 2
}

/// The longest value the hand-typed filler tests look at: fillers are typed
/// by people; key blocks and long tokens are generated, and a chance run
/// inside kilobytes of base64 must not drop a private key.
const FILLER_MAX_LEN: usize = 256;

/// Why `s` is filler typed by hand, if it is: a counting or alphabet run of
/// eight or more (`12345678`, `abcdefgh`, `9876543210`), or a short unit
/// repeated over most of the value (`abcdefabcdefabcdef12`). A generated token
/// has either by chance with odds far below one in a billion per position
/// (1/62^7 for a run of eight), so these are documentation fillers like
/// `examplevalidkeyABCDEFGHIJ…`, not credentials. Applied, like template
/// words, to contextual values only ([`placeholder_word`]): a value in a
/// provider's exact format is reported even when it looks made up.
pub fn hand_typed_filler(s: &[u8]) -> Option<&'static str> {
    if s.len() > FILLER_MAX_LEN {
        return None;
    }
    const RUN: usize = 8;
    let same_class = |a: u8, b: u8| {
        (a.is_ascii_digit() && b.is_ascii_digit())
            || (a.is_ascii_lowercase() && b.is_ascii_lowercase())
            || (a.is_ascii_uppercase() && b.is_ascii_uppercase())
    };
    for step in [1i16, -1] {
        let mut len = 1;
        for w in s.windows(2) {
            let follows = same_class(w[0], w[1]) && i16::from(w[1]) - i16::from(w[0]) == step;
            len = if follows { len + 1 } else { 1 };
            if len >= RUN {
                return Some("a counting or alphabet run (12345678, abcdefgh)");
            }
        }
    }
    // A unit of two to eight characters repeated over at least 16 characters
    // and three quarters of the value (`abcdefabcdef…abcdef12`), in any case
    // (`ABC123abc123ABC123…`). One repeated
    // character is not enough: real formats have runs of `A` (Twitter bearer
    // tokens, Dropbox long-lived tokens).
    let need = 16.max(s.len() * 3 / 4);
    let periodic = (2..=8).any(|p| {
        let mut run = p;
        (p..s.len()).any(|i| {
            run = if s[i].eq_ignore_ascii_case(&s[i - p]) { run + 1 } else { p };
            run >= need
        })
    });
    periodic.then_some("a short pattern repeated (abcabcabc...)")
}

/// The start of the `validation` note of a provider-format value that looks
/// hand-typed ([`hand_typed_filler`]). Such a value is reported, capped at
/// `low` ([`reported_severity`]): it has the provider's exact shape, so an
/// auditor wants to see it, but it is far more likely documentation than a key.
pub const FILLER_NOTE: &str = "filler-looking value";

/// The severity a hit is reported at: the rule's, lowered when an offline
/// check failed (a mangled or truncated credential), and at most `low` when
/// the value is a provider-format token that looks hand-typed (`FILLER_NOTE`).
pub fn reported_severity(rule: Severity, failed_check: bool, validation: Option<&str>) -> Severity {
    if !failed_check {
        return rule;
    }
    if validation.is_some_and(|v| v.starts_with(FILLER_NOTE)) {
        return rule.min(Severity::Low);
    }
    rule.lowered()
}

/// The entropy `secret` must reach for a rule whose `min_entropy` is `min`
/// and whose context vouches for the value. `n` distinct bytes carry at most
/// `log2(n)` bits each, so a fixed bar of 3.0 rejects every password of
/// eight characters or fewer however random (`s3cr3t`, `3eCa3P` in a
/// `user:pass@host`). For password-class rules (`min` of 3.0 or less) the
/// bar of a short value that mixes letters with digits or symbols is lowered
/// to 80% of that maximum. Letter-only values (`EXPIRE`, `changeme`), values
/// without a letter (a version such as `0.1.3` after `-keypass` in a package
/// list), template words and filler keep the full bar, and a value that
/// repeats itself (`a1a1`) still fails.
pub fn entropy_bar(min: f64, secret: &[u8]) -> f64 {
    let password_class = min <= 3.0;
    let has_letter = secret.iter().any(u8::is_ascii_alphabetic);
    let has_non_letter = secret.iter().any(|b| !b.is_ascii_alphabetic());
    let mixed = has_letter && has_non_letter;
    if secret.len() < 2 || !password_class || !mixed || is_placeholder_word(secret) {
        return min;
    }
    min.min(0.8 * (secret.len() as f64).log2())
}

/// True when [`placeholder`] gives a reason.
pub fn is_placeholder(secret: &[u8]) -> bool {
    placeholder(secret).is_some()
}

/// Words that mark a template wherever they appear in a value: nobody's
/// real password contains `your_` or `changeme` by accident. The first
/// [`FILL_IN_WORDS`] of them say a person must put a value there.
const TEMPLATE_WORDS: &[(&str, &str)] = &[
    ("changeme", "a change-me default"),
    ("change_me", "a change-me default"),
    ("change-me", "a change-me default"),
    ("your_", "a fill-in-your-value template"),
    ("your-", "a fill-in-your-value template"),
    ("yourpassword", "a fill-in-your-value template"),
    ("placeholder", "says it is a placeholder"),
    ("redacted", "says it was redacted"),
    ("replace_me", "a replace-me template"),
    ("replace-me", "a replace-me template"),
    ("replaceme", "a replace-me template"),
    ("insert_", "an insert-here template"),
    ("insert-", "an insert-here template"),
    ("enter_your", "an enter-here template"),
    // Words after this line say a value is not a production one; a test
    // system's `dummy_pass` still opens that system.
    ("notreal", "says it is not real"),
    ("not-real", "says it is not real"),
    ("not_real", "says it is not real"),
    ("example", "says it is an example"),
    ("sample", "says it is a sample"),
    ("dummy", "says it is a dummy"),
    ("fake", "says it is fake"),
];

/// How many of [`TEMPLATE_WORDS`], from the first, are fill-in markers.
const FILL_IN_WORDS: usize = 14;

/// Why a value says a person must fill it in, if it does (`changeme`,
/// `your_password`, `<redacted>`): a placeholder even where the context
/// vouches for the value (a command's password flag), unlike the words that
/// only say a value is not for production (`dummy`, `fake`, `example`).
pub fn fill_in_word(secret: &[u8]) -> Option<&'static str> {
    let lower = secret.to_ascii_lowercase();
    let has = |w: &str| lower.windows(w.len()).any(|x| x == w.as_bytes());
    TEMPLATE_WORDS[..FILL_IN_WORDS].iter().find(|(w, _)| has(w)).map(|(_, why)| *why)
}

/// Values that are placeholders or defaults only as a whole (ignoring case
/// and up to four trailing digits): `password`, `password123`, `secret`,
/// `admin`, `none`. Inside a longer value they mean nothing.
const WHOLE_WORDS: &[(&str, &str)] = &[
    ("password", "the word password"),
    ("passwd", "the word passwd"),
    ("pass", "the word pass"),
    ("secret", "the word secret"),
    ("mysecret", "a stock secret"),
    ("supersecret", "a stock secret"),
    ("my-secret", "a stock secret"),
    ("token", "the word token"),
    ("test", "the word test"),
    ("admin", "a stock default account password"),
    ("root", "a stock default account password"),
    ("guest", "a stock default account password"),
    ("letmein", "a stock weak password"),
    ("qwerty", "a stock weak password"),
    ("foobar", "a stock example value"),
    ("abcdef", "a stock example value"),
    ("abc", "a stock example value"),
    ("todo", "a to-do marker"),
    ("fixme", "a fix-me marker"),
    ("public", "a stock default (the SNMP read community)"),
    ("private", "a stock default (the SNMP write community)"),
    ("none", "a null value"),
    ("null", "a null value"),
    ("nil", "a null value"),
    ("undefined", "a null value"),
    ("123456", "a stock weak password"),
    ("12345678", "a stock weak password"),
    ("123456789", "a stock weak password"),
    ("1234567890", "a stock weak password"),
];

/// Why a contextual value is a placeholder, if it is: a template word
/// anywhere in it (`your_api_key`, `changeme123`), a whole value that is a
/// stock word (`password123`, `secret`, `none`), or hand-typed filler
/// (`abcdefgh…`, `123456123456…`).
pub fn placeholder_word(secret: &[u8]) -> Option<&'static str> {
    template_or_stock_word(secret).or_else(|| hand_typed_filler(secret))
}

/// Why a contextual value says it is not real, if it does: a template word
/// anywhere in it (`your_api_key`, `changeme123`) or a stock word as the
/// whole value (`password123`, `none`). Unlike hand-typed filler, these are
/// set aside in every context, a provider's name beside them included: a
/// value that says "change me" is a template wherever it sits.
pub fn template_or_stock_word(secret: &[u8]) -> Option<&'static str> {
    let lower = secret.to_ascii_lowercase();
    let has = |w: &str| lower.windows(w.len()).any(|x| x == w.as_bytes());
    if let Some((_, why)) = TEMPLATE_WORDS.iter().find(|(w, _)| has(w)) {
        return Some(why);
    }
    stock_word(secret)
}

/// Credential vocabulary and common words: a word of a key name that says
/// *what kind* of secret it holds or is too common to name a service
/// (`secret`, `access`, `bootstrap`, `system`). A keyword made only of them
/// (`secretaccesskey`, `bindpw`, `requirepass`) names no provider.
const VOCABULARY: &[&str] = &[
    "access",
    "account",
    "admin",
    "alpha",
    "api",
    "app",
    "application",
    "auth",
    "authorization",
    "bcrypt",
    "bearer",
    "begin",
    "bind",
    "bootstrap",
    "bot",
    "callback",
    "cert",
    "cleartext",
    "client",
    "code",
    "config",
    "consumer",
    "convertto",
    "cred",
    "credential",
    "credentials",
    "customer",
    "decryption",
    "deployer",
    "device",
    "enable",
    "encryption",
    "env",
    "help",
    "hook",
    "hooks",
    "http",
    "https",
    "id",
    "identified",
    "index",
    "integration",
    "invoke",
    "key",
    "keys",
    "last",
    "license",
    "login",
    "machine",
    "master",
    "message",
    "meta",
    "notify",
    "pager",
    "pass",
    "passphrase",
    "passwd",
    "password",
    "pat",
    "pbkdf",
    "preshared",
    "priv",
    "private",
    "proc",
    "provision",
    "public",
    "pw",
    "pwd",
    "registry",
    "require",
    "routing",
    "sasl",
    "scram",
    "secret",
    "secrets",
    "server",
    "service",
    "session",
    "signing",
    "source",
    "spaces",
    "storage",
    "subscription",
    "system",
    "token",
    "tokens",
    "trigger",
    "user",
    "username",
    "validation",
    "wallet",
    "webhook",
    "wiki",
    // Commands that take a password (command-line rules' keywords): a tool, not a provider.
    "chpasswd",
    "cmdkey",
    "curl",
    "dgmgrl",
    "expdp",
    "impdp",
    "isql",
    "ldapadd",
    "ldapdelete",
    "ldapmodify",
    "ldapsearch",
    "mongosh",
    "osql",
    "psexec",
    "rdesktop",
    "rman",
    "rpcclient",
    "schtasks",
    "smbclient",
    "sqlcmd",
    "sqlldr",
    "sqlplus",
    "sshpass",
    "useradd",
    "usermod",
    "wget",
    "xfreerdp",
];

/// The provider or product a keyword of a provider's rule names, if it
/// names one: its first word (`adobe` of `adobe_api`, `datadog`, `mysql`),
/// when that word has four letters or more and is not made only of
/// [`VOCABULARY`] and digits. Token prefixes (`sk_live_`, `waka_`), URLs,
/// header names (`x-functions-key`) and credential words (`password`,
/// `secretaccesskey`) name none. It decides whether a key name such as
/// `ALGOLIA_API_KEY` puts a value in a provider's credential context
/// ([`provider_context_filler`]).
pub fn provider_name(keyword: &str) -> Option<String> {
    named_word(keyword, 4)
}

/// The name a section header (`[duo]`, `stripe:`) must carry for the keys
/// below it to be read in a provider's context: like [`provider_name`], but
/// three letters are enough (`duo`, `aws`), since a header that is exactly
/// the name is a stronger cue than a word inside a key.
pub fn section_name(keyword: &str) -> Option<String> {
    named_word(keyword, 3)
}

/// The first word of `keyword` when it has `min_letters` letters or more and
/// is not made only of [`VOCABULARY`] and digits.
fn named_word(keyword: &str, min_letters: usize) -> Option<String> {
    let k = keyword.to_ascii_lowercase();
    if k.ends_with(['_', '-', ' ']) {
        return None;
    }
    let first = k.split(['_', '-', ' ']).next()?;
    let letters = first.bytes().filter(u8::is_ascii_alphabetic).count();
    if letters < min_letters || !first.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return None;
    }
    // Can `first` be cut entirely into vocabulary words and digit runs?
    let b = first.as_bytes();
    let mut cut = vec![false; b.len() + 1];
    cut[0] = true;
    for i in 0..b.len() {
        if !cut[i] {
            continue;
        }
        let digits = b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
        if digits > 0 {
            cut[i + digits] = true;
        }
        for w in VOCABULARY {
            if b[i..].starts_with(w.as_bytes()) {
                cut[i + w.len()] = true;
            }
        }
    }
    (!cut[b.len()]).then(|| first.to_owned())
}

/// The words of a key name, lower-cased: split at every byte that is not a
/// letter or digit and at camel-case steps (`guardianPrivateKey` gives
/// `guardian`, `private`, `key`; `ALGOLIA_API_KEY` gives `algolia`, `api`,
/// `key`).
pub fn key_words(key: &[u8]) -> Vec<Vec<u8>> {
    let mut words = Vec::new();
    find_key_word(key, |w| {
        words.push(w.to_vec());
        None::<()>
    });
    words
}

/// The first `Some` that `f` returns for the words of [`key_words`], in
/// order, without allocating them: each word is lower-cased into a buffer
/// reused for the next. Section headers and the keys before contextual
/// matches are looked up this way tens of thousands of times per layer.
pub fn find_key_word<T>(key: &[u8], mut f: impl FnMut(&[u8]) -> Option<T>) -> Option<T> {
    // Words are short; a longer one is lower-cased on the heap.
    let mut small = [0u8; 64];
    let mut lower = |word: &[u8]| -> Option<T> {
        match small.get_mut(..word.len()) {
            Some(buf) => {
                buf.copy_from_slice(word);
                buf.make_ascii_lowercase();
                f(buf)
            }
            None => f(&word.to_ascii_lowercase()),
        }
    };
    for part in key.split(|b| !b.is_ascii_alphanumeric()).filter(|p| !p.is_empty()) {
        let mut start = 0;
        for i in 1..part.len() {
            if part[i - 1].is_ascii_lowercase() && part[i].is_ascii_uppercase() {
                if let Some(found) = lower(&part[start..i]) {
                    return Some(found);
                }
                start = i;
            }
        }
        if let Some(found) = lower(&part[start..]) {
            return Some(found);
        }
    }
    None
}

/// The `validation` note of hand-typed filler in a provider's credential
/// context: a generic or entropy rule matched `ALGOLIA_API_KEY=abcdef0123…`,
/// whose key names a provider strata has rules for (`provider`). Such a value
/// is reported, capped at `low` like filler in a provider's format
/// ([`FILLER_NOTE`] starts the note, [`reported_severity`] caps it): the key
/// tells a responder which service's credential slot the file fills, and the
/// value is far more likely a template's filler than a key. Filler under a
/// key that names no provider (`SESSION_SECRET=abcdefgh…`) stays set aside.
pub fn provider_context_filler(why: &str, provider: &str) -> String {
    format!("{FILLER_NOTE}: {why}; likely a placeholder in a `{provider}` credential context")
}

/// Why a value is, as a whole, a stock word (ignoring case and up to four
/// trailing digits): `password`, `Password123`, `admin`, `none`. Safe for
/// every rule: no provider's token is the word `password`, and a rule whose
/// value class admits one (a Gradle block, a command-line flag) has matched
/// a placeholder.
pub fn stock_word(secret: &[u8]) -> Option<&'static str> {
    let lower = secret.to_ascii_lowercase();
    let digits = lower.iter().rev().take_while(|b| b.is_ascii_digit()).count();
    let stems: &[&[u8]] = if (1..=4).contains(&digits) && digits < lower.len() {
        &[&lower[..], &lower[..lower.len() - digits]]
    } else {
        &[&lower[..]]
    };
    WHOLE_WORDS.iter().find(|(w, _)| stems.contains(&w.as_bytes())).map(|(_, why)| *why)
}

/// Words that say what a value is rather than being one: an identifier made
/// of them names the credential it stands for (`db_password`, `adminPass`).
const CREDENTIAL_NOUNS: &[&str] = &[
    "password",
    "passwd",
    "pass",
    "pwd",
    "pw",
    "secret",
    "token",
    "pat",
    "key",
    "apikey",
    "passphrase",
    "credential",
    "credentials",
];

/// Why an identifier given where a password goes is a placeholder, if it is:
/// an upper-case variable name (`DB_PASSWORD`, `SMB_PASS1`), or a value built
/// from words one of which names the credential (`db_password`,
/// `adminPass`). Only consulted for word-like values in a strong context
/// (`psexec -p dev_admin` is a password; `-p admin_password` names one).
pub fn names_its_value(secret: &[u8]) -> Option<&'static str> {
    let upper_name = secret.first().is_some_and(u8::is_ascii_uppercase)
        && secret.contains(&b'_')
        && secret.iter().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || *b == b'_');
    if upper_name {
        return Some("an upper-case variable name (DB_PASSWORD)");
    }
    if !is_word_like(secret) {
        return None;
    }
    let words = key_words(secret);
    if words.iter().any(|w| CREDENTIAL_NOUNS.iter().any(|n| n.as_bytes() == w.as_slice())) {
        return Some("an identifier naming the credential (db_password)");
    }
    // `dckr_pat_xxx`, `token_XXXX`: a word that is one letter repeated masks the value.
    let mask = |w: &Vec<u8>| w.len() >= 3 && w.iter().all(|&b| b == w[0]);
    words.iter().any(mask).then_some("an identifier with a masked part (dckr_pat_xxx)")
}

/// The entropy a plain lowercase word (`option`, `followed`) must reach in a
/// strong context when prose follows it ([`prose_follows`]): as likely prose
/// about a flag (`give -p followed by the password`) as a password, so it
/// needs the generic password bar.
pub const PLAIN_WORD_BAR: f64 = 3.0;

/// True when the text after a value reads as a sentence: its next two
/// tokens on the line are plain lowercase words (the second may end in
/// punctuation), as in `-p option to set it`. A command goes on with an
/// argument, a flag or a path (`-p braksha shutdown -r`, `-p hunter ssh
/// deploy@host`), or ends.
pub fn prose_follows(rest: &[u8]) -> bool {
    let line = rest.split(|&b| b == b'\n').next().unwrap_or_default();
    let mut tokens = line.split(|b| b.is_ascii_whitespace()).filter(|t| !t.is_empty());
    let (Some(first), Some(second)) = (tokens.next(), tokens.next()) else { return false };
    let second = second.strip_suffix(b".").or(second.strip_suffix(b",")).unwrap_or(second);
    is_plain_word(first) && is_plain_word(second)
}

/// True for a plain lowercase word: letters `a`-`z` only.
pub fn is_plain_word(secret: &[u8]) -> bool {
    !secret.is_empty() && secret.iter().all(u8::is_ascii_lowercase)
}

/// True when [`placeholder_word`] gives a reason.
pub fn is_placeholder_word(secret: &[u8]) -> bool {
    placeholder_word(secret).is_some()
}

/// True for identifiers built from words (`AuthLDAPCharsetConfig`,
/// `GetSecretValue`, `secret_key_base`): a contextual rule's value must look
/// generated, not named. Random letters (`cntgDIkHNOaMfPLk`) split into
/// one-letter pieces and are not word-like.
pub fn is_word_like(secret: &[u8]) -> bool {
    if !secret.iter().all(|b| b.is_ascii_alphabetic() || b"_-.".contains(b)) {
        return false;
    }
    let mut words: Vec<&[u8]> = Vec::new();
    for part in secret.split(|b| b"_-.".contains(b)).filter(|p| !p.is_empty()) {
        // Camel-case split: before an upper after a lower, and before the last
        // upper of an acronym that starts a capitalised word (`LDAPCharset`).
        let mut start = 0;
        for i in 1..part.len() {
            let (prev, cur) = (part[i - 1], part[i]);
            let next_lower = part.get(i + 1).is_some_and(u8::is_ascii_lowercase);
            let boundary = (prev.is_ascii_lowercase() && cur.is_ascii_uppercase())
                || (prev.is_ascii_uppercase() && cur.is_ascii_uppercase() && next_lower);
            if boundary {
                words.push(&part[start..i]);
                start = i;
            }
        }
        words.push(&part[start..]);
    }
    let is_word = |w: &&[u8]| {
        let lower = w.iter().filter(|b| b.is_ascii_lowercase()).count();
        let acronym = w.len() >= 2 && lower == 0;
        let capitalised = w.len() >= 3 && lower == w.len() - 1 && w[0].is_ascii_uppercase();
        let plain = w.len() >= 2 && lower == w.len();
        acronym || capitalised || plain
    };
    words.len() >= 2 && words.iter().all(is_word)
}

/// The documented example this secret is, if any (exact match, or an AWS
/// key id ending in `EXAMPLE`).
pub fn known_example(secret: &[u8]) -> Option<&'static str> {
    let text = std::str::from_utf8(secret).ok()?;
    for line in KNOWN_EXAMPLES.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if line == text {
            return Some("documented example credential");
        }
    }
    let aws_example = text.len() == 20 && text.starts_with("AKIA") && text.ends_with("EXAMPLE");
    let aws_secret_example = text.len() == 40 && text.ends_with("EXAMPLEKEY");
    (aws_example || aws_secret_example).then_some("documented example credential")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders() {
        for p in [
            &b"${GITHUB_TOKEN}"[..],
            b"$(cat /run/secrets/pw)",
            b"<your-token>",
            b"xxxxxxxxxxxxxxxx",
            b"********",
            b"aaaaaaaa",
            b"{{ .Values.token }}",
            b"user-%s",
            b"......",
            b"ghp_000000000000000000000000000000000000",
            b"",
            b"creds[1]",
            b"args[\"password\"]",
            b"self.opts[key]",
            // Code cut short by the value's quote (ansible modules' argument specs).
            b"config.get(",
            b"self.module.params[",
            b"client_config_info.get_child_content(",
            b"dict(type=",
            b"@http.proxy_pass",
            // Elided in documentation.
            b"U2FsdGVkX1...",
            "ABAQDAwXxn7kIMNWzcDfo\u{2026}".as_bytes(),
            // A Java .properties translation.
            br"\u79d8\u5bc6\u9375\u3092\u5fa9\u53f7",
        ] {
            assert!(placeholder(p).is_some(), "{}", String::from_utf8_lossy(p));
        }
        for real in [
            &b"Secret[2024]"[..],
            b"pw[",
            b"k9[]",
            b"a]b[1]",
            b"Summer(2024",
            b"Pass(",
            b"kq7(zl=9",
            br"Kq7\u00e9vX2m",
            br"\u79d8Kq7vX2mZ9pL4rT8w",
            b"Kq7.vX2m...",
            b"@Dm1n.x",
            b"@dmin_pass",
            b"Kq7...",
        ] {
            assert!(placeholder(real).is_none(), "{}", String::from_utf8_lossy(real));
        }
        assert!(!is_placeholder(b"ghp_R4nd0mLooking"));
        for v in [&b"$PASSWORD"[..], b"$db_pass", b"%PASSWORD%", b"%Pw_1%"] {
            assert!(placeholder(v).is_some(), "{}", String::from_utf8_lossy(v));
        }
        for real in [&b"$5Kq9zL"[..], b"Pq%7z%", b"$x", b"%a%", b"$Hunter2!"] {
            assert!(placeholder(real).is_none(), "{}", String::from_utf8_lossy(real));
        }
        assert!(!is_placeholder(b"Zq8$Lm3!Xv9"), "a lone $ is a real password character");

        for w in [&b"AuthLDAPCharsetConfig"[..], b"GetSecretValue", b"secret_key_base"] {
            assert!(is_word_like(w), "{}", String::from_utf8_lossy(w));
        }
        for r in [
            &b"cntgDIkHNOaMfPLk"[..],
            b"kQbVHAxiupdQSqCxaWvcQDCQNCjNfBBG",
            b"BAcnPmPaUGxUghYe",
            b"kxqpzmtrwv",
        ] {
            assert!(!is_word_like(r), "{}", String::from_utf8_lossy(r));
        }
        assert!(known_example(b"AKIAIOSFODNN7EXAMPLE").is_some());
        assert!(known_example(b"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY").is_some());
        assert!(known_example(b"AKIAYJK4RSVGBCMQOCPJ").is_none());
        // Documented defaults and the empty password's NT hash live in the example list.
        assert!(known_example(b"changeit").is_some());
        assert!(known_example(b"31d6cfe0d16ae931b73c59d7e0c089c0").is_some());
    }

    #[test]
    fn identifiers_that_name_the_credential_are_placeholders() {
        for p in [
            &b"db_password"[..],
            b"DB_PASSWORD",
            b"SMB_PASS1",
            b"adminPass",
            b"api_token",
            b"dckr_pat_xxx",
            b"deploy_XXXX",
        ] {
            assert!(names_its_value(p).is_some(), "{}", String::from_utf8_lossy(p));
        }
        for real in [&b"dev_admin"[..], b"deploy_user", b"S3cr3tPass", b"Hunter2x", b"specialbill"]
        {
            assert_eq!(names_its_value(real), None, "{}", String::from_utf8_lossy(real));
        }
        assert_eq!(TEMPLATE_WORDS[FILL_IN_WORDS - 1].0, "enter_your");
        for p in [&b"changeme"[..], b"your_pass_here", b"REDACTED", b"replace-me-1"] {
            assert!(fill_in_word(p).is_some(), "{}", String::from_utf8_lossy(p));
        }
        for kept in [&b"fake_build_admin"[..], b"dummy_pass9", b"Hunter2x"] {
            assert_eq!(fill_in_word(kept), None, "{}", String::from_utf8_lossy(kept));
        }
        assert!(prose_follows(b" to set the password"));
        assert!(prose_follows(b" by the password.\nnext"));
        assert!(!prose_follows(b" shutdown -r -f"));
        assert!(!prose_follows(b" ssh deploy@10.0.4.17"));
        assert!(!prose_follows(b" ping\nmore words here"));
        assert!(!prose_follows(b" CMD"));
        assert!(is_plain_word(b"option"));
        assert!(!is_plain_word(b"Hunter"));
        assert!(!is_plain_word(b"dev_admin"));
    }

    #[test]
    fn short_passwords_meet_a_bar_scaled_to_their_length() {
        // A fixed 3.0 bar is out of reach for six characters (log2 6 = 2.58).
        assert!(entropy_bar(3.0, b"s3cr3t") < 2.2);
        assert!(entropy_bar(3.0, b"3eCa3P") < 2.2);
        // Long values, token-class rules, letter-only words, template words
        // and filler keep the rule's own bar.
        assert_eq!(entropy_bar(3.0, b"c9e1f47a2b8d3e6f05a7c4b9d2e8f1a3"), 3.0);
        assert_eq!(entropy_bar(3.5, b"dXNlcjpwYXNz"), 3.5);
        for kept in [&b"EXPIRE"[..], b"changeme", b"changeme1", b"test1234", b"0.1.3", b"2024-01"] {
            assert_eq!(entropy_bar(3.0, kept), 3.0, "{}", String::from_utf8_lossy(kept));
        }
        // A value that repeats itself stays below even the lowered bar.
        let a1 = b"a1a1a1";
        assert!(super::super::entropy::shannon(a1) < entropy_bar(3.0, a1));
    }

    #[test]
    fn filler_in_a_provider_format_is_reported_low() {
        let note = format!("{FILLER_NOTE}: a counting or alphabet run (12345678, abcdefgh)");
        assert_eq!(reported_severity(Severity::Critical, true, Some(&note)), Severity::Low);
        assert_eq!(reported_severity(Severity::Medium, true, Some(&note)), Severity::Low);
        assert_eq!(reported_severity(Severity::Info, true, Some(&note)), Severity::Info);
        // A failed offline check alone lowers two steps; no mark keeps the rule's.
        assert_eq!(
            reported_severity(Severity::Critical, true, Some("check failed: crc32")),
            Severity::Medium
        );
        assert_eq!(reported_severity(Severity::High, false, None), Severity::High);
    }

    #[test]
    fn provider_names_are_names_not_credential_words_prefixes_or_commands() {
        for (kw, name) in [
            ("algolia", "algolia"),
            ("adobe_api", "adobe"),
            ("DATADOG", "datadog"),
            ("ddapikey", "ddapikey"),
            ("mysql", "mysql"),
            ("ai21labs", "ai21labs"),
        ] {
            assert_eq!(provider_name(kw).as_deref(), Some(name), "{kw}");
        }
        for kw in [
            "password",
            "secretaccesskey",
            "bindpw",
            "requirepass",
            "authorization",
            "x-functions-key",
            "sk_live_",
            "waka_",
            "dd",
            "key0",
            "https://",
            "hooks.slack.com",
            "sshpass",
            "curl",
            "bootstrap",
        ] {
            assert_eq!(provider_name(kw), None, "{kw}");
        }
    }

    #[test]
    fn key_words_split_at_separators_and_camel_case() {
        let words = |k: &[u8]| {
            key_words(k).into_iter().map(|w| String::from_utf8(w).unwrap()).collect::<Vec<_>>()
        };
        assert_eq!(words(b"export ALGOLIA_API_KEY="), ["export", "algolia", "api", "key"]);
        assert_eq!(words(b"guardianPrivateKey = '"), ["guardian", "private", "key"]);
        assert_eq!(words(b"\"pagerduty.token\": \""), ["pagerduty", "token"]);
        assert_eq!(words(b"WEBHOOK_TOKEN="), ["webhook", "token"]);
    }

    #[test]
    fn find_key_word_sees_the_words_of_key_words_in_order() {
        let long = format!("x_{}_Key", "A".repeat(70));
        for key in [&b"export ALGOLIA_API_KEY="[..], b"guardianPrivateKey", long.as_bytes(), b""] {
            let mut seen = Vec::new();
            let none = find_key_word(key, |w| {
                seen.push(w.to_vec());
                None::<()>
            });
            assert_eq!((none, seen), (None, key_words(key)));
        }
        // It stops at the first word `f` accepts.
        assert_eq!(
            find_key_word(b"a_DataDog_api", |w| w.starts_with(b"d").then_some(w.len())),
            Some(4)
        );
        assert_eq!(key_words(long.as_bytes())[1], "a".repeat(70).into_bytes());
    }

    #[test]
    fn provider_context_filler_note_caps_at_low() {
        let note = provider_context_filler("a counting or alphabet run", "pagerduty");
        assert!(note.starts_with(FILLER_NOTE), "{note}");
        assert!(note.contains("`pagerduty` credential context"), "{note}");
        assert_eq!(reported_severity(Severity::Medium, true, Some(&note)), Severity::Low);
        // Template and stock words are placeholders in every context; filler is not one of them.
        assert!(template_or_stock_word(b"your_algolia_key_1234").is_some());
        assert!(template_or_stock_word(b"Password123").is_some());
        assert_eq!(template_or_stock_word(b"abcdefghij0123456789XyZw"), None);
        assert!(placeholder_word(b"abcdefghij0123456789XyZw").is_some());
    }

    #[test]
    fn placeholder_words_whole_or_template() {
        // Placeholders: template words anywhere, stock words as the whole value.
        for p in [
            &b"ChangeMe123"[..],
            b"your_password_here",
            b"YOUR-API-KEY",
            b"replace_me",
            b"password",
            b"Password123",
            b"secret",
            b"none",
            b"NULL",
            b"123456",
            b"admin",
            b"test1234",
            b"example-token-1",
        ] {
            assert!(placeholder_word(p).is_some(), "{}", String::from_utf8_lossy(p));
        }
        // Hand-typed filler: counting and alphabet runs, a repeated unit.
        for p in [
            &b"examplevalidkeyABCDEFGHIJKLMNOP"[..],
            b"d1e2c3b4a5f6078901234567890abcdef",
            b"tfp_abcdef9876543210jklmnop",
            b"abcdefabcdefabcdefabcdefabcdef12",
            b"xyzxyzxyzxyzxyzxyzxyzxyzxyzxyz12",
            b"123456123456123456123456",
            b"ABC123abc123ABC123abc123ABC123ab",
        ] {
            assert!(hand_typed_filler(p).is_some(), "{}", String::from_utf8_lossy(p));
            assert!(placeholder_word(p).is_some(), "{}", String::from_utf8_lossy(p));
            assert!(placeholder(p).is_none(), "filler is a contextual test only");
        }
        // Short runs and near-repeats occur in generated tokens and stay.
        for real in [
            &b"ghp_R4nd0mLooking1234567Zq"[..],
            b"c9e1f47a2b8d3e6f05a7c4b9d2e8f1a3",
            b"abcdefgQ7mLz2Vx",
            b"Kq7Kq7Kq7Xz",
            b"AAAAAAAAAAAAAAAAAAAAAAQ7mLz2VxKq8Wc4Rt6Yp0",
            b"Zq8Lm3Zq8Lm3Vx7Kc2Wt9Rp4Jb6Hs1Fy0KeQz",
        ] {
            assert_eq!(hand_typed_filler(real), None, "{}", String::from_utf8_lossy(real));
        }
        // A long generated blob is never judged a filler, whatever it contains.
        let blob = [b"MIIEvQ".as_slice(), &[b'A'; 300], b"abcdefghij"].concat();
        assert_eq!(hand_typed_filler(&blob), None);
        // Stock words as the whole value, for every rule.
        for p in [&b"password"[..], b"Admin123", b"root"] {
            assert!(stock_word(p).is_some(), "{}", String::from_utf8_lossy(p));
        }
        for r in [&b"ChangeMe123"[..], b"MyPassword!92kq", b"ghp_R4nd0mLooking"] {
            assert_eq!(stock_word(r), None, "{}", String::from_utf8_lossy(r));
        }
        // Real-looking values that merely contain a stock word.
        for r in [
            &b"Nonexistent-Vq8z"[..],
            b"MyPassword!92kq",
            b"Xk9#Todo2024!",
            b"Nullable7Qz4Lm",
            b"a1b2abcdef9f8e7d6c5b",
            b"Zq1234567Lm",
            b"Password2024!",
            b"secret12345",
        ] {
            assert_eq!(placeholder_word(r), None, "{}", String::from_utf8_lossy(r));
        }
    }
}
