// Command versions is a test component: it answers "version $VERSION", except that with
// FAIL_PATHS set it answers 500 to every path but "/" (so it passes its readiness check and
// fails real traffic, as a bad release does); with BROKEN set it answers 500 to everything,
// its readiness check included (a bad configuration).
package main

import (
	"fmt"
	"os"
)

func main() {
	if os.Getenv("BROKEN") != "" {
		fmt.Print("Status: 500 Internal Server Error\nContent-Type: text/plain\n\nbroken configuration\n")
		return
	}
	if p := os.Getenv("PATH_INFO"); os.Getenv("FAIL_PATHS") != "" && p != "" && p != "/" {
		fmt.Print("Status: 500 Internal Server Error\nContent-Type: text/plain\n\nbroken release\n")
		return
	}
	fmt.Print("Content-Type: text/plain\n\n")
	fmt.Println("version", os.Getenv("VERSION"))
}
