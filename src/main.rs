fn main() {
    println!("torii");
}
