using System.Text;
using Kiln.Api;

namespace Kiln.Tests.Api;

public sealed class HttpResponseHeadTests
{
    private static (bool Ok, HttpResponseHead Head, string? Error) Parse(string head)
    {
        var ok = HttpResponseHead.TryParse(Encoding.ASCII.GetBytes(head), out var result, out var error);
        return (ok, result, error);
    }

    [Fact]
    public void Firecrackers_status_line_with_an_empty_reason_phrase_parses()
    {
        var (ok, head, _) = Parse("HTTP/1.1 204 \r\nServer: Firecracker API\r\nConnection: keep-alive");

        Assert.True(ok);
        Assert.Equal(new HttpResponseHead(204, null, false), head);
        Assert.True(head.HasNoBody);
    }

    [Fact]
    public void A_status_line_with_a_reason_phrase_and_headers_in_any_case_parses()
    {
        var (ok, head, _) = Parse("HTTP/1.1 400 Bad Request\r\ncontent-length:  42 \r\nCONNECTION: Close");

        Assert.True(ok);
        Assert.Equal(new HttpResponseHead(400, 42, true), head);
    }

    [Theory]
    [InlineData("SSH-2.0-OpenSSH_9.6")]
    [InlineData("HTTP/1.1 20")]
    [InlineData("HTTP/1.1 2000 ")]
    [InlineData("HTTP/2 200 ")]
    [InlineData("HTTP/1.1 200 \r\nContent-Length: lots")]
    [InlineData("HTTP/1.1 200 \r\nno colon here")]
    [InlineData("HTTP/1.1 200 \r\nTransfer-Encoding: chunked")]
    public void Heads_that_are_not_what_firecracker_sends_are_refused_with_a_reason(string text)
    {
        var (ok, _, error) = Parse(text);

        Assert.False(ok);
        Assert.False(string.IsNullOrEmpty(error));
    }

    [Fact]
    public void Excerpts_escape_control_characters_and_are_cut()
    {
        var excerpt = HttpResponseHead.Excerpt(Encoding.ASCII.GetBytes("a\r\nb\u0001" + new string('x', 300)), 10);

        Assert.Equal("a\\r\\nb\\x01xxxxx…", excerpt);
    }
}
