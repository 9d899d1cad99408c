module github.com/otpbot/otpbot

go 1.26.8

require github.com/go-telegram-bot-api/telegram-bot-api/v5 v5.5.1
