#!/bin/sh
# hello-peios: prints a greeting.
echo "Hello from Peios, ${1:-world}!"
