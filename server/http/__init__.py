"""What the JSON API and the HTML pages share: request parsing, replies, errors, i18n."""
