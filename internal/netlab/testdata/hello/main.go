// Command hello is a tiny main package for BuildBinary's test.
package main

import "fmt"

func main() { fmt.Println("hello") }
