Console.WriteLine($"kiln {Kiln.KilnInfo.Version}");
return 0;
