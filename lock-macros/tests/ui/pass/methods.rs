// Methods with every kind of receiver, and `<self.field>` placeholders.
#![deny(warnings)]
use std::sync::Arc;

use distlock::{LockError, distributed_lock};

#[derive(Debug)]
pub struct AppError;

impl From<LockError> for AppError {
    fn from(_: LockError) -> Self {
        AppError
    }
}

pub struct Accounts {
    pub tenant: String,
    pub count: u64,
    pub owner: (u32, u32),
}

impl Accounts {
    #[distributed_lock(key = "user:<self.tenant>:<user_id>", ttl = "30s")]
    pub async fn by_ref(&self, user_id: u64) -> Result<u64, AppError> {
        Ok(self.count + user_id)
    }

    #[distributed_lock(key = "user:<self.tenant>")]
    pub async fn by_mut(&mut self) -> Result<(), AppError> {
        self.count += 1;
        Ok(())
    }

    #[distributed_lock(key = "arc:<self.tenant>:<self.owner.1>")]
    pub async fn by_arc(self: Arc<Self>) -> Result<u64, AppError> {
        Ok(self.count)
    }

    #[distributed_lock(key = "value:<self.tenant>")]
    pub async fn by_value(mut self) -> Result<Self, AppError> {
        self.count = 0;
        Ok(self)
    }

    #[distributed_lock(key = "lifetime:<self.tenant>")]
    pub async fn borrowed_output(&self) -> Result<&str, AppError> {
        Ok(&self.tenant)
    }

    #[distributed_lock(key = "static:<id>")]
    pub async fn associated(id: u64) -> Result<Self, AppError> {
        Ok(Accounts { tenant: id.to_string(), count: 0, owner: (0, 0) })
    }
}

fn main() {
    let mut accounts = Accounts { tenant: "t".into(), count: 0, owner: (1, 2) };
    let _ = accounts.by_ref(1);
    let _ = accounts.by_mut();
    let _ = Arc::new(Accounts { tenant: "t".into(), count: 0, owner: (1, 2) }).by_arc();
    let _ = accounts.borrowed_output();
    let _ = accounts.by_value();
    let _ = Accounts::associated(1);
}
