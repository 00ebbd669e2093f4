//! Roles and what they permit. A route asks for one [`Permission`]; a caller's [`Role`] grants a
//! fixed set of them.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// What a caller is, as far as the APIs care.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Everything, including the lifecycle of assets and accounts.
    Admin,
    /// Posts transfers and reads.
    Writer,
    /// Reads the books.
    Reader,
    /// Reads the books and everything under `/v1/audit`: export, checkpoints, keys, proofs.
    Auditor,
}

/// What a route needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Permission {
    /// Any valid credential (e.g. `GET /v1/whoami`).
    Authenticated,
    /// Read accounts, transfers, the log and the books.
    Read,
    /// Post transfers.
    Transfer,
    /// Register assets; open, freeze, unfreeze and close accounts.
    Administer,
    /// Export the log, read and sign checkpoints, read keys and proofs.
    Audit,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Admin, Role::Writer, Role::Reader, Role::Auditor];

    pub fn permits(self, permission: Permission) -> bool {
        use Permission::{Audit, Authenticated, Read, Transfer};
        match self {
            Role::Admin => true,
            Role::Writer => matches!(permission, Authenticated | Read | Transfer),
            Role::Reader => matches!(permission, Authenticated | Read),
            Role::Auditor => matches!(permission, Authenticated | Read | Audit),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Writer => "writer",
            Role::Reader => "reader",
            Role::Auditor => "auditor",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        Role::ALL
            .into_iter()
            .find(|role| role.as_str() == text)
            .ok_or_else(|| format!("unknown role {text:?} (admin, writer, reader or auditor)"))
    }
}

impl Permission {
    /// What a role can be granted (every credential is `Authenticated`).
    pub const GRANTABLE: [Permission; 4] = [
        Permission::Read,
        Permission::Transfer,
        Permission::Administer,
        Permission::Audit,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Permission::Authenticated => "authenticated",
            Permission::Read => "read",
            Permission::Transfer => "transfer",
            Permission::Administer => "administer",
            Permission::Audit => "audit",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_admin_administers_and_only_admin_and_auditor_audit() {
        for role in Role::ALL {
            assert!(role.permits(Permission::Authenticated) && role.permits(Permission::Read));
            assert_eq!(role.permits(Permission::Administer), role == Role::Admin);
            assert_eq!(
                role.permits(Permission::Audit),
                matches!(role, Role::Admin | Role::Auditor)
            );
            assert_eq!(
                role.permits(Permission::Transfer),
                matches!(role, Role::Admin | Role::Writer)
            );
        }
    }

    #[test]
    fn roles_round_trip_through_text() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>(), Ok(role));
        }
        assert!("root".parse::<Role>().is_err());
    }
}
