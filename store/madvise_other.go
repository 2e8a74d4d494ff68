//go:build !linux

package store

func dropMapping(uintptr, int) error { return nil }
