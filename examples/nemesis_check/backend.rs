//! The lock services `--backend` names.

/// Where the workers' locks live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// One Redis server, behind the test kit's fault proxy.
    Single,
    /// A Redis Cluster: 3 masters with one replica each.
    Cluster,
    /// Redlock over three independent Redis servers.
    Redlock,
    /// A master with 2 replicas, failed over by 3 sentinels.
    Sentinel,
    /// A 3-member etcd cluster.
    Etcd,
}

impl Backend {
    pub const ALL: [Backend; 5] = [
        Backend::Single,
        Backend::Cluster,
        Backend::Redlock,
        Backend::Sentinel,
        Backend::Etcd,
    ];

    /// The name `--backend` takes, and the worker's plan carries.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Single => "single",
            Backend::Cluster => "cluster",
            Backend::Redlock => "redlock",
            Backend::Sentinel => "sentinel",
            Backend::Etcd => "etcd",
        }
    }

    /// The backend `--backend` names, or an error listing the names.
    pub fn parse(name: &str) -> Result<Backend, String> {
        Backend::ALL
            .into_iter()
            .find(|backend| backend.name() == name)
            .ok_or_else(|| {
                let names: Vec<&str> = Backend::ALL.iter().map(|b| b.name()).collect();
                format!("--backend {name}: not one of {}", names.join(", "))
            })
    }
}
