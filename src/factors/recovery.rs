//! Recovery codes: ten single-use codes, shown once when the first factor is enrolled (and
//! when they are regenerated), kept only as keyed hashes. Each is 50 random bits; wrong guesses
//! count as failed sign-ins for the regulation, like wrong passwords.

use rand::Rng;

use crate::keys::Keys;

/// Codes in a set.
pub const COUNT: usize = 10;
/// What codes are written with: no 0/o, 1/l/i to misread.
const ALPHABET: &[u8] = b"23456789abcdefghjkmnpqrstuvwxyz";
/// Characters on each side of the dash.
const HALF: usize = 5;

/// A fresh set, as shown to the user (`xxxxx-xxxxx`).
pub fn generate() -> Vec<String> {
    let mut rng = rand::rngs::OsRng;
    (0..COUNT)
        .map(|_| {
            let mut pick = || {
                (0..HALF)
                    .map(|_| char::from(ALPHABET[rng.gen_range(0..ALPHABET.len())]))
                    .collect::<String>()
            };
            let first = pick();
            format!("{first}-{}", pick())
        })
        .collect()
}

/// A typed code in its stored form: lowercase, without the dash and spaces people add or drop.
pub fn normalize(typed: &str) -> String {
    typed
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .flat_map(char::to_lowercase)
        .collect()
}

/// The keyed hash kept in the store: a leaked table gives nothing to try. Keyed with the
/// second-factor key, which cookie key rotations leave alone.
pub fn hash(keys: &Keys, user_id: &str, code: &str) -> String {
    keys.factor_mac("recovery-code", &format!("{user_id}\n{}", normalize(code)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_ten_distinct_and_read_back_however_typed() {
        let codes = generate();
        assert_eq!(codes.len(), COUNT);
        let mut unique = codes.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), COUNT);
        for c in &codes {
            assert_eq!(c.len(), 2 * HALF + 1);
            assert_eq!(c.as_bytes()[HALF], b'-');
        }
        assert_eq!(normalize(" ABCDE-fghjk "), "abcdefghjk");
        assert_eq!(normalize("abcde fghjk"), "abcdefghjk");
    }
}
