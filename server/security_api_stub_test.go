package main

import "testing"

func (w *secWorld) isolationCases(t *testing.T) {}
func (w *secWorld) limitCases(t *testing.T)     {}
func (w *secWorld) injectionCases(t *testing.T) {}
func (w *secWorld) apqCases(t *testing.T)       {}
