package chatpage

import "testing"

func TestToHTML(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"code message", "🔐 <b>3-D Secure code</b>\n<code>004711</code>",
			"🔐 <b>3-D Secure code</b>\n<code>004711</code>"},
		{"entities stay escaped", "Merchant: &lt;b&gt;&amp;&#34;x", "Merchant: &lt;b&gt;&amp;&#34;x"},
		{"script is text", "<script>alert(1)</script>", "alert(1)"},
		{"unknown attributes dropped", `<b onclick="x()">hi</b>`, "<b>hi</b>"},
		{"web link kept", `<a href="https://t.me/bot?start=a&amp;b">open</a>`,
			`<a href="https://t.me/bot?start=a&amp;b" target="_blank" rel="noopener noreferrer">open</a>`},
		{"javascript link is text", `<a href="javascript:alert(1)">x</a>`, `<span class="link">x</span>`},
		{"quote in href escaped", `<a href='https://x.example/" onclick="x()'>x</a>`,
			`<a href="https://x.example/&#34; onclick=&#34;x()" target="_blank" rel="noopener noreferrer">x</a>`},
		{"a tag cut short stays harmless", `<a href='https://x.example/"><script>'>x</a>`, `<span class="link">&#39;&gt;x</span>`},
		{"spoiler", `<tg-spoiler>s</tg-spoiler> <span class="tg-spoiler">t</span>`,
			`<span class="spoiler">s</span> <span class="spoiler">t</span>`},
		{"aliases", "<strong>a</strong><em>b</em><ins>c</ins><del>d</del>", "<b>a</b><i>b</i><u>c</u><s>d</s>"},
		{"unclosed closed at the end", "<b><i>x", "<b><i>x</i></b>"},
		{"stray closer dropped", "x</b>y", "xy"},
		{"inner closed with outer", "<b><i>x</b>y", "<b><i>x</i></b>y"},
		{"command made clickable", "Send /help to see",
			`Send <a href="#" class="cmd" data-cmd="/help">/help</a> to see`},
		{"bare address made clickable", "see https://example.com/a?b=1 now",
			`see <a href="https://example.com/a?b=1" target="_blank" rel="noopener noreferrer">https://example.com/a?b=1</a> now`},
		{"nothing made clickable in code", "<code>/help https://x.example</code>", "<code>/help https://x.example</code>"},
		{"a path is no command", "a/b and 1/2", "a/b and 1/2"},
		{"bare < is text", "1 < 2", "1 &lt; 2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := toHTML(tt.in); got != tt.want {
				t.Errorf("toHTML(%q)\n got %q\nwant %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestLoopbackHost(t *testing.T) {
	for host, want := range map[string]bool{
		"127.0.0.1:8080": true, "localhost:8080": true, "LOCALHOST": true, "[::1]:8080": true, "127.0.0.2": true,
		"example.com:8080": false, "192.168.1.2:8080": false, "": false, "attacker.localhost.example:8080": false,
	} {
		if got := loopbackHost(host); got != want {
			t.Errorf("loopbackHost(%q) = %v; want %v", host, got, want)
		}
	}
}
