"""Text messages: Twilio's Messages API, and how many segments a body costs."""
