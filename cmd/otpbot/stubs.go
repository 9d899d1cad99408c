package main

import (
	"context"
	"errors"
	"io"
)

// The commands below are wired as the packages they need land.


func cmdSign(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	return errors.New("sign: not wired yet")
}

func cmdBackup(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	return errors.New("backup: not wired yet")
}

func cmdMigrate(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	return errors.New("migrate: not wired yet")
}
