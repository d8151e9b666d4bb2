fn main() {
    println!("signer");
}
