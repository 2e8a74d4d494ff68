package main

import (
	"runtime"
	"strconv"
)

func numCPU() int { return runtime.GOMAXPROCS(0) }

func atoiOr(s string, def int) int {
	v, err := strconv.Atoi(s)
	if err != nil {
		return def
	}
	return v
}
