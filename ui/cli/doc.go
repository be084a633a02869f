// Package cli is ferry's command-line front end over the transfer engine:
// flags, prompts and output; it holds no transfer logic.
package cli
