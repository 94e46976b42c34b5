//! The environment as the trace keeps it. A trace holds the program's
//! whole environment unless told otherwise: `--env-secret PATTERN` keeps
//! the values of matching variables out (the program still gets them;
//! rrc-replay takes them from its own environment).

use rrc_trace::SecretVar;

/// Whether `name` matches `pattern`, where `*` stands for any run of
/// characters (`*TOKEN*`, `AWS_*`, or a plain name).
pub fn matches(pattern: &[u8], name: &[u8]) -> bool {
    match pattern.iter().position(|b| *b == b'*') {
        None => pattern == name,
        Some(star) => {
            let (head, rest) = (&pattern[..star], &pattern[star + 1..]);
            name.starts_with(head)
                && (0..=name.len() - head.len())
                    .any(|skip| matches(rest, &name[head.len() + skip..]))
        }
    }
}

/// The environment for the trace header: each secret variable's entry is
/// its bare name, and its value's length is listed separately.
pub fn for_trace(env: &[Vec<u8>], patterns: &[Vec<u8>]) -> (Vec<Vec<u8>>, Vec<SecretVar>) {
    let mut kept = Vec::with_capacity(env.len());
    let mut secrets = Vec::new();
    for var in env {
        let eq = var.iter().position(|b| *b == b'=').unwrap_or(var.len());
        let name = &var[..eq];
        if patterns.iter().any(|p| matches(p, name)) {
            secrets.push(SecretVar {
                name: name.to_vec(),
                value_len: var.len().saturating_sub(eq + 1) as u64,
            });
            kept.push(name.to_vec());
        } else {
            kept.push(var.clone());
        }
    }
    (kept, secrets)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_names_with_stars_anywhere() {
        assert!(matches(b"API_TOKEN", b"API_TOKEN"));
        assert!(!matches(b"API_TOKEN", b"API_TOKENS"));
        assert!(matches(b"*TOKEN*", b"GITHUB_TOKEN"));
        assert!(matches(b"*TOKEN*", b"TOKEN_FILE"));
        assert!(matches(b"AWS_*", b"AWS_SECRET_ACCESS_KEY"));
        assert!(!matches(b"AWS_*", b"MY_AWS_KEY"));
        assert!(matches(b"*", b"ANYTHING"));
        assert!(matches(b"A*B*C", b"AxxByyC"));
        assert!(!matches(b"A*B*C", b"AxxCyyB"));
    }

    #[test]
    fn secret_values_are_kept_out_but_their_place_and_length_are_kept() {
        let env = vec![b"HOME=/root".to_vec(), b"DB_PASSWORD=hunter2".to_vec()];
        let (kept, secrets) = for_trace(&env, &[b"*PASSWORD*".to_vec()]);
        assert_eq!(kept, vec![b"HOME=/root".to_vec(), b"DB_PASSWORD".to_vec()]);
        assert_eq!(
            secrets,
            vec![SecretVar {
                name: b"DB_PASSWORD".to_vec(),
                value_len: 7
            }]
        );
        assert!(!kept.concat().windows(7).any(|w| w == b"hunter2"));
    }
}
