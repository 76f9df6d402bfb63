//! Who may sign in (`PARLEY_ALLOWED_EMAILS`, `PARLEY_ALLOWED_DOMAINS`) and who is an operator
//! (`PARLEY_ADMINS`), decided from an [`Identity`] on the server. An email counts only when
//! the provider says it verified it.

use app::account::SignInFailure;
use parley_store::Identity;

/// The admission and operator rules.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    emails: Vec<String>,
    domains: Vec<String>,
    admin_emails: Vec<String>,
    admin_subjects: Vec<(String, String)>,
}

impl Policy {
    /// The rules of the configured lists (entries trimmed, emails and domains lower case;
    /// an admin entry with a space is `<issuer> <sub>`, else an email).
    pub fn new(emails: &[String], domains: &[String], admins: &[String]) -> Policy {
        let clean = |list: &[String]| -> Vec<String> {
            list.iter()
                .map(|e| e.trim().trim_start_matches('@').to_ascii_lowercase())
                .filter(|e| !e.is_empty())
                .collect()
        };
        let (mut admin_emails, mut admin_subjects) = (Vec::new(), Vec::new());
        for admin in admins.iter().map(|a| a.trim()).filter(|a| !a.is_empty()) {
            match admin.split_once(char::is_whitespace) {
                Some((issuer, sub)) => {
                    admin_subjects.push((issuer.to_string(), sub.trim().to_string()))
                }
                None => admin_emails.push(admin.to_ascii_lowercase()),
            }
        }
        Policy { emails: clean(emails), domains: clean(domains), admin_emails, admin_subjects }
    }

    /// Whether `who` may sign in: anyone when no list is set; else a verified email on the
    /// emails list or at a listed domain.
    ///
    /// # Errors
    /// [`SignInFailure::Unverified`] for an email the provider did not verify (or none);
    /// [`SignInFailure::NotAllowed`] for one on no list.
    pub fn admit(&self, who: &Identity) -> Result<(), SignInFailure> {
        if self.emails.is_empty() && self.domains.is_empty() {
            return Ok(());
        }
        let email = verified_email(who).ok_or(SignInFailure::Unverified)?;
        let domain = email.rsplit_once('@').map_or("", |(_, d)| d);
        if self.emails.contains(&email) || self.domains.iter().any(|d| d == domain) {
            Ok(())
        } else {
            Err(SignInFailure::NotAllowed)
        }
    }

    /// Whether `who` is one of the site's operators.
    pub fn is_admin(&self, who: &Identity) -> bool {
        verified_email(who).is_some_and(|e| self.admin_emails.contains(&e))
            || self.admin_subjects.iter().any(|(i, s)| *i == who.issuer && *s == who.subject)
    }
}

/// The identity's email in lower case, when the provider verified it.
fn verified_email(who: &Identity) -> Option<String> {
    who.email.as_deref().filter(|_| who.email_verified).map(str::to_ascii_lowercase)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn who(email: &str, verified: bool) -> Identity {
        Identity {
            issuer: "https://id".into(),
            subject: "7".into(),
            email: Some(email.into()),
            email_verified: verified,
            name: None,
        }
    }

    #[test]
    fn lists_admit_verified_emails_only() {
        let open = Policy::default();
        assert_eq!(open.admit(&who("x@y.z", false)), Ok(()));
        let strings = |l: &[&str]| l.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let team = Policy::new(&strings(&["Boss@Else.org"]), &strings(&[" @Example.org"]), &[]);
        assert_eq!(team.admit(&who("ann@example.org", true)), Ok(()));
        assert_eq!(team.admit(&who("BOSS@else.org", true)), Ok(()));
        assert_eq!(team.admit(&who("ann@example.org", false)), Err(SignInFailure::Unverified));
        assert_eq!(team.admit(&who("ann@example.org.evil", true)), Err(SignInFailure::NotAllowed));
        assert_eq!(team.admit(&who("ann@sub.example.org", true)), Err(SignInFailure::NotAllowed));
        let nobody = Identity { email: None, ..who("", true) };
        assert_eq!(team.admit(&nobody), Err(SignInFailure::Unverified));
    }

    #[test]
    fn admins_are_verified_emails_or_issuer_and_subject() {
        let strings = |l: &[&str]| l.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let policy = Policy::new(&[], &[], &strings(&["ops@example.org", "https://id 7"]));
        assert!(policy.is_admin(&who("OPS@example.org", true)));
        assert!(
            !policy.is_admin(&Identity { subject: "8".into(), ..who("ops@example.org", false) })
        );
        assert!(policy.is_admin(&who("other@x", false)), "by issuer and subject");
        assert!(!policy.is_admin(&Identity { subject: "8".into(), ..who("other@x", true) }));
    }
}
