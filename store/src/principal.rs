//! Who a request acts for, as types: a [`Principal`] is a browser session and, once people can
//! sign in, the account signed in on it. What a principal owns (Files, context caches) is kept
//! under its [`Owner`] key, and every statement that reads or changes owned rows takes one:
//! a principal uses only its own.

/// A browser session's id: 128 random bits as 32 lowercase hex digits, carried in the signed
/// session cookie.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SessionId(String);

impl SessionId {
    /// A new random session id.
    pub fn random() -> SessionId {
        SessionId(hex::encode(rand::random::<[u8; 16]>()))
    }

    /// The id written as `text`, when it is one (32 hex digits; upper case is read as lower).
    pub fn parse(text: &str) -> Option<SessionId> {
        (text.len() == 32 && text.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| SessionId(text.to_ascii_lowercase()))
    }

    /// The 32 hex digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for SessionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The client a request comes from, as a key for per-address limits: an IPv4 address, or the
/// /64 prefix of an IPv6 one (one host usually holds a whole /64). Put in every request's
/// extensions by `parley` (from the peer address, or `X-Forwarded-For` behind a trusted proxy).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClientAddress(pub String);

/// A signed-in account's id: 128 random bits as 32 lowercase hex digits, made by the store
/// when it first sees an identity ([`crate::accounts`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AccountId(String);

impl AccountId {
    /// A new random id.
    pub(crate) fn random() -> AccountId {
        AccountId(hex::encode(rand::random::<[u8; 16]>()))
    }

    /// An id read back from the store.
    /// The account id written as `text` (32 hex digits), if it is one.
    pub fn parse(text: &str) -> Option<AccountId> {
        (text.len() == 32 && text.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| AccountId(text.to_ascii_lowercase()))
    }

    pub(crate) fn from_store(id: String) -> AccountId {
        AccountId(id)
    }

    /// The id as the store keeps it.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for AccountId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Who a request acts for: its browser session, and the account signed in on it, if any.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Principal {
    /// The browser session (always there: anonymous use needs no account).
    pub session: SessionId,
    /// The account signed in on the session, if any.
    pub account: Option<AccountId>,
}

impl Principal {
    /// An anonymous visitor: `session` alone.
    pub fn anonymous(session: SessionId) -> Principal {
        Principal { session, account: None }
    }

    /// The key what this principal owns is kept under: the account's when one is signed in,
    /// else the session's.
    pub fn owner(&self) -> Owner {
        match &self.account {
            Some(account) => Owner::of_account(account),
            None => Owner(self.session.0.clone()),
        }
    }
}

/// The key owned rows are kept under (`files.owner`, `context_caches.owner`): a session's id
/// (32 hex digits, as the store has always kept them) or `account:{id}` — the two never collide.
/// Made only from a [`Principal`] or read back from the store.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Owner(String);

impl Owner {
    /// The key of what `account` owns (what [`Principal::owner`] gives when it is signed in).
    pub fn of_account(account: &AccountId) -> Owner {
        Owner(format!("account:{}", account.0))
    }

    /// The key as the store keeps it.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Owner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl rusqlite::types::ToSql for Owner {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        Ok(self.0.as_str().into())
    }
}

impl rusqlite::types::FromSql for Owner {
    fn column_result(value: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
        Ok(Owner(value.as_str()?.to_string()))
    }
}

impl tokio_postgres::types::ToSql for Owner {
    fn to_sql(
        &self,
        ty: &tokio_postgres::types::Type,
        out: &mut tokio_postgres::types::private::BytesMut,
    ) -> Result<tokio_postgres::types::IsNull, Box<dyn std::error::Error + Sync + Send>> {
        self.0.to_sql(ty, out)
    }

    fn accepts(ty: &tokio_postgres::types::Type) -> bool {
        <String as tokio_postgres::types::ToSql>::accepts(ty)
    }

    tokio_postgres::types::to_sql_checked!();
}

impl<'a> tokio_postgres::types::FromSql<'a> for Owner {
    fn from_sql(
        ty: &tokio_postgres::types::Type,
        raw: &'a [u8],
    ) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        String::from_sql(ty, raw).map(Owner)
    }

    fn accepts(ty: &tokio_postgres::types::Type) -> bool {
        <String as tokio_postgres::types::FromSql>::accepts(ty)
    }
}

/// Test support: principals with readable keys.
#[cfg(test)]
pub(crate) fn owner(name: &str) -> Owner {
    Owner(name.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_ids_are_32_hex_digits_and_owners_never_collide() {
        let id = SessionId::random();
        assert_eq!(SessionId::parse(id.as_str()), Some(id.clone()));
        assert_eq!(SessionId::parse(&id.as_str().to_ascii_uppercase()), Some(id.clone()));
        for bad in ["", "abc", &"g".repeat(32), &"a".repeat(33)] {
            assert!(SessionId::parse(bad).is_none(), "{bad}");
        }
        let anonymous = Principal::anonymous(id.clone());
        assert_eq!(anonymous.owner().as_str(), id.as_str());
        let signed_in = Principal { session: id, account: Some(AccountId("7".into())) };
        assert_eq!(signed_in.owner().as_str(), "account:7");
        assert_ne!(signed_in.owner(), anonymous.owner());
    }
}
