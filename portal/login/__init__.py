"""Login methods: ``sms`` (phone + SMS code, the primary path) and ``wechat`` (owned by the WeChat package)."""
