fn main() {
    println!("courier");
}
