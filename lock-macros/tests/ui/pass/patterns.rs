// Placeholders naming bindings introduced by parameter patterns.
#![deny(warnings)]
use distlock::{LockError, distributed_lock};

#[derive(Debug)]
pub struct AppError;

impl From<LockError> for AppError {
    fn from(_: LockError) -> Self {
        AppError
    }
}

pub struct Path<T>(pub T);
pub struct Json<T>(pub T);

pub struct Transfer {
    pub from: String,
    pub to: String,
}

pub struct Order {
    pub id: u64,
    pub customer: Customer,
}

pub struct Customer {
    pub region: &'static str,
}

pub struct Foo {
    pub x: u32,
    pub y: u32,
}

#[distributed_lock(key = "path:<id>")]
async fn path(Path(id): Path<u64>) -> Result<u64, AppError> {
    Ok(id)
}

#[distributed_lock(key = "transfer:<req.from>:<req.to>", ttl = "2s", wait = "500ms")]
async fn json(Json(req): Json<Transfer>) -> Result<String, AppError> {
    Ok(req.from + &req.to)
}

#[distributed_lock(key = "pair:<a>:<b>")]
async fn tuple((a, b): (u32, u32)) -> Result<u32, AppError> {
    Ok(a + b)
}

#[distributed_lock(key = "order:<id>:<customer.region>")]
async fn reference(&Order { id, ref customer }: &Order) -> Result<u64, AppError> {
    let _ = customer;
    Ok(id)
}

#[distributed_lock(key = "foo:<renamed>")]
async fn renamed(Foo { x: renamed, .. }: Foo) -> Result<u32, AppError> {
    Ok(renamed)
}

#[distributed_lock(key = "n:<n>:<r>")]
async fn mutable(mut n: u32, ref r: u32) -> Result<u32, AppError> {
    n += *r;
    Ok(n)
}

#[distributed_lock(key = "nested:<inner>:<whole.0>:<deep>")]
async fn nested(
    whole @ (inner, _): (u8, u8),
    ((deep,), Path(_)): ((u16,), Path<()>),
) -> Result<u8, AppError> {
    let _ = deep;
    Ok(inner + whole.1)
}

#[distributed_lock(key = "slice:<first>:<last>")]
async fn slice([first, .., last]: [u8; 4]) -> Result<u8, AppError> {
    Ok(first + last)
}

#[distributed_lock(key = "tuple-index:<pair.0>:<pair.1.0>")]
async fn tuple_index(pair: (u8, (u16, u32))) -> Result<u8, AppError> {
    Ok(pair.0)
}

pub struct Job {
    pub r#type: &'static str,
}

#[distributed_lock(key = "job:<job.r#type>:<r#loop>")]
async fn raw_identifiers(job: Job, r#loop: u8) -> Result<u8, AppError> {
    let _ = job;
    Ok(r#loop)
}

fn main() {
    let _ = path(Path(1));
    let _ = json(Json(Transfer { from: "a".into(), to: "b".into() }));
    let _ = tuple((1, 2));
    let order = Order { id: 1, customer: Customer { region: "eu" } };
    let _ = reference(&order);
    let _ = renamed(Foo { x: 1, y: 2 });
    let _ = mutable(1, 2);
    let _ = nested((1, 2), ((3,), Path(())));
    let _ = slice([1, 2, 3, 4]);
    let _ = tuple_index((1, (2, 3)));
    let _ = raw_identifiers(Job { r#type: "t" }, 1);
}
